//! `docker cp` primitives against a fake container root full of hostile
//! symlinks: nothing is read from or written to the host, and a tree
//! survives a round trip (run as root: owners, fifos, setuid bits).

use std::collections::BTreeMap;
use std::fs;
use std::io::{Cursor, Read, Write};
use std::os::unix::fs::{symlink, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use amber::archive::copy::{
    extract_tar_into, go_mode, stat_path, write_tar_of, CopyOptions, PathStat,
};
use amber::archive::ArchiveError;

const MARKER: &str = "container-passwd-marker";

/// A fake container root and a sibling `OUTSIDE` directory that must stay
/// empty.
struct Fixture {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    outside: PathBuf,
    /// A name unique to this test run, to check the host's / and /tmp.
    unique: String,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let outside = tmp.path().join("OUTSIDE");
    fs::create_dir_all(root.join("etc")).unwrap();
    fs::create_dir_all(root.join("tmp")).unwrap();
    fs::create_dir(&outside).unwrap();
    fs::write(root.join("etc/passwd"), MARKER).unwrap();
    symlink("/", root.join("escape")).unwrap();
    symlink("../../..", root.join("up")).unwrap();
    symlink("/etc", root.join("etc/evil")).unwrap();
    symlink(&outside, root.join("d")).unwrap();
    let unique = format!("amber-cp-test-{}-{}", std::process::id(), rand_suffix());
    Fixture {
        _tmp: tmp,
        root,
        outside,
        unique,
    }
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

impl Fixture {
    fn assert_host_untouched(&self) {
        assert_eq!(fs::read_dir(&self.outside).unwrap().count(), 0, "OUTSIDE");
        for host in ["/", "/tmp", "/etc"] {
            let p = Path::new(host).join(&self.unique);
            assert!(!p.exists(), "{} was written on the host", p.display());
        }
    }
}

/// A tar with one regular file per (name, contents); names are written raw,
/// so `..` and absolute names get through.
fn raw_tar(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in entries {
        let mut h = tar::Header::new_gnu();
        let field = &mut h.as_old_mut().name;
        field[..name.len()].copy_from_slice(name.as_bytes());
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        b.append(&h, *data).unwrap();
    }
    b.into_inner().unwrap()
}

fn tar_names(tar: &[u8]) -> Vec<String> {
    let mut a = tar::Archive::new(Cursor::new(tar));
    a.entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            String::from_utf8(e.path_bytes().into_owned()).unwrap()
        })
        .collect()
}

fn tar_file(tar: &[u8], want: &str) -> Option<String> {
    let mut a = tar::Archive::new(Cursor::new(tar));
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        if e.path_bytes().as_ref() == want.as_bytes() {
            let mut s = String::new();
            e.read_to_string(&mut s).unwrap();
            return Some(s);
        }
    }
    None
}

fn opts() -> CopyOptions {
    CopyOptions::default()
}

#[test]
fn reading_through_escaping_symlinks_stays_in_the_container() {
    let f = fixture();
    for path in [
        "/escape/etc/passwd",
        "/up/etc/passwd",
        "/etc/evil/passwd",
        "/up/up/escape/etc/evil/passwd",
    ] {
        let mut out = Vec::new();
        let st = write_tar_of(&f.root, path, &mut out).unwrap();
        assert_eq!(st.name, "passwd");
        assert_eq!(tar_names(&out), ["passwd"], "{path}");
        assert_eq!(tar_file(&out, "passwd").as_deref(), Some(MARKER), "{path}");
    }
    // The host's /tmp/OUTSIDE is the container's (missing) /tmp/...: never
    // the host directory.
    fs::write(f.outside.join("secret"), "host").unwrap();
    let err = write_tar_of(&f.root, "/d/secret", Vec::new()).unwrap_err();
    assert!(matches!(err, ArchiveError::NotFound { .. }), "{err}");
    // A symlink asked for by name is archived as a symlink, not followed.
    let mut out = Vec::new();
    write_tar_of(&f.root, "/escape", &mut out).unwrap();
    let mut a = tar::Archive::new(Cursor::new(&out));
    let e = a.entries().unwrap().next().unwrap().unwrap();
    assert_eq!(e.header().entry_type(), tar::EntryType::Symlink);
    assert_eq!(e.link_name().unwrap().unwrap(), Path::new("/"));
}

#[test]
fn archiving_a_tree_never_follows_its_symlinks() {
    let f = fixture();
    fs::write(f.outside.join("secret"), "host").unwrap();
    let mut out = Vec::new();
    write_tar_of(&f.root, "/", &mut out).unwrap();
    let names = tar_names(&out);
    assert!(names.contains(&"./d".to_string()), "{names:?}");
    assert!(!names.iter().any(|n| n.contains("secret")), "{names:?}");
    assert_eq!(tar_file(&out, "./etc/passwd").as_deref(), Some(MARKER));
}

#[test]
fn writing_through_escaping_symlinks_stays_in_the_container() {
    let f = fixture();
    let name = f.unique.clone();
    let tar = raw_tar(&[(name.as_str(), b"x")]);
    // `/up` is the container's root.
    extract_tar_into(&f.root, "/up", Cursor::new(tar.clone()), &opts()).unwrap();
    assert!(f.root.join(&name).is_file());
    extract_tar_into(&f.root, "/escape/tmp", Cursor::new(tar.clone()), &opts()).unwrap();
    assert!(f.root.join("tmp").join(&name).is_file());
    // `/d` points at a host path that the container does not have.
    let err = extract_tar_into(&f.root, "/d", Cursor::new(tar.clone()), &opts()).unwrap_err();
    assert!(matches!(err, ArchiveError::NotFound { .. }), "{err}");
    // Once the container has that path, `/d` lands there, inside the root.
    let inside = f.root.join(f.outside.strip_prefix("/").unwrap());
    fs::create_dir_all(&inside).unwrap();
    extract_tar_into(&f.root, "/d", Cursor::new(tar), &opts()).unwrap();
    assert!(inside.join(&name).is_file());
    // Entries going through symlinks already in the container, or made by
    // the archive itself, resolve inside the root too.
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    b.append_link(&mut h, "lnk", "/").unwrap();
    let body = b"y";
    let mut h = tar::Header::new_gnu();
    h.set_size(1);
    h.set_mode(0o644);
    b.append_data(&mut h, format!("lnk/tmp/{name}.2"), &body[..])
        .unwrap();
    b.append_data(&mut h, format!("up/{name}.3"), &body[..])
        .unwrap();
    b.append_data(&mut h, format!("escape/{name}.4"), &body[..])
        .unwrap();
    let tar = b.into_inner().unwrap();
    extract_tar_into(&f.root, "/", Cursor::new(tar), &opts()).unwrap();
    assert!(f.root.join(format!("tmp/{name}.2")).is_file());
    assert!(f.root.join(format!("{name}.3")).is_file());
    assert!(f.root.join(format!("{name}.4")).is_file());
    for n in [".2", ".3", ".4"] {
        assert!(!Path::new("/tmp").join(format!("{name}{n}")).exists());
        assert!(!Path::new("/").join(format!("{name}{n}")).exists());
    }
    f.assert_host_untouched();
}

#[test]
fn hostile_entries_are_refused() {
    let f = fixture();
    let dotdot = format!("../../{}", f.unique);
    let abs = format!("/tmp/{}", f.unique);
    for name in [dotdot.as_str(), "a/../../x", abs.as_str()] {
        let tar = raw_tar(&[(name, b"x")]);
        let err = extract_tar_into(&f.root, "/tmp", Cursor::new(tar), &opts()).unwrap_err();
        assert!(
            matches!(err, ArchiveError::UnsafePath { .. }),
            "{name}: {err}"
        );
    }
    // A relative symlink climbing out of the destination (Docker's
    // "breakout"), a hardlink to a host file, a device node.
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    b.append_link(&mut h, "s", "../../../../../../etc").unwrap();
    let sym = b.into_inner().unwrap();
    let err = extract_tar_into(&f.root, "/tmp", Cursor::new(sym), &opts()).unwrap_err();
    assert!(matches!(err, ArchiveError::UnsafePath { .. }), "{err}");
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Link);
    h.set_size(0);
    let field = &mut h.as_old_mut().linkname;
    field[..11].copy_from_slice(b"/etc/passwd");
    h.set_cksum();
    let mut b = tar::Builder::new(Vec::new());
    b.append_data(&mut h, "hl", &b""[..]).unwrap();
    let hard = b.into_inner().unwrap();
    let err = extract_tar_into(&f.root, "/tmp", Cursor::new(hard), &opts()).unwrap_err();
    assert!(matches!(err, ArchiveError::UnsafePath { .. }), "{err}");
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Char);
    h.set_size(0);
    h.set_device_major(1).unwrap();
    h.set_device_minor(3).unwrap();
    let mut b = tar::Builder::new(Vec::new());
    b.append_data(&mut h, "null", &b""[..]).unwrap();
    let dev = b.into_inner().unwrap();
    let err = extract_tar_into(&f.root, "/tmp", Cursor::new(dev), &opts()).unwrap_err();
    assert!(matches!(err, ArchiveError::Device { .. }), "{err}");
    assert!(!f.root.join("tmp/null").exists());
    f.assert_host_untouched();
}

#[test]
fn existing_symlinks_are_replaced_not_written_through() {
    let f = fixture();
    symlink("/etc/passwd", f.root.join("tmp/victim")).unwrap();
    let tar = raw_tar(&[("victim", b"new")]);
    extract_tar_into(&f.root, "/tmp", Cursor::new(tar), &opts()).unwrap();
    let md = fs::symlink_metadata(f.root.join("tmp/victim")).unwrap();
    assert!(md.is_file());
    assert_eq!(fs::read(f.root.join("tmp/victim")).unwrap(), b"new");
    assert_eq!(
        fs::read(f.root.join("etc/passwd")).unwrap(),
        MARKER.as_bytes()
    );
    // A hardlink may not reach through a symlink, even one inside the root.
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    b.append_link(&mut h, "lnk", "/etc").unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Link);
    h.set_size(0);
    b.append_link(&mut h, "x", "lnk/passwd").unwrap();
    let tar = b.into_inner().unwrap();
    let err = extract_tar_into(&f.root, "/tmp", Cursor::new(tar), &opts()).unwrap_err();
    assert!(matches!(err, ArchiveError::UnsafePath { .. }), "{err}");
    assert!(!f.root.join("tmp/x").exists());
    f.assert_host_untouched();
}

#[test]
fn destination_must_be_an_existing_directory() {
    let f = fixture();
    let tar = raw_tar(&[("x", b"x")]);
    let err = extract_tar_into(&f.root, "/etc/passwd", Cursor::new(tar.clone()), &opts());
    assert!(
        matches!(err, Err(ArchiveError::NotADirectory { .. })),
        "{err:?}"
    );
    let err = extract_tar_into(&f.root, "/nope/deeper", Cursor::new(tar), &opts());
    assert!(matches!(err, Err(ArchiveError::NotFound { .. })), "{err:?}");
}

#[test]
fn stat_of_dirs_files_symlinks_and_missing_paths() {
    let f = fixture();
    fs::set_permissions(f.root.join("etc"), fs::Permissions::from_mode(0o755)).unwrap();
    let d = stat_path(&f.root, "/etc").unwrap();
    assert_eq!((d.name.as_str(), d.mode), ("etc", go_mode::DIR | 0o755));
    assert_eq!(d.link_target, "");
    fs::set_permissions(f.root.join("etc/passwd"), fs::Permissions::from_mode(0o644)).unwrap();
    let p = stat_path(&f.root, "/escape/etc/passwd").unwrap();
    assert_eq!(
        (p.name.as_str(), p.size, p.mode),
        ("passwd", MARKER.len() as i64, 0o644)
    );
    assert!(
        p.mtime.ends_with('Z') && p.mtime.contains('T'),
        "{}",
        p.mtime
    );
    symlink("evil/passwd", f.root.join("etc/chain")).unwrap();
    let cases = [
        ("/etc/evil", "/etc"),
        ("/up", "/"),
        ("/escape", "/"),
        ("/etc/chain", "/etc/passwd"),
        ("/d", f.outside.to_str().unwrap()),
    ];
    for (path, target) in cases {
        let s = stat_path(&f.root, path).unwrap();
        assert_eq!(s.mode & go_mode::SYMLINK, go_mode::SYMLINK, "{path}");
        assert_eq!(s.link_target, target, "{path}");
    }
    // A trailing slash follows the final symlink, as in Docker.
    let s = stat_path(&f.root, "/etc/evil/").unwrap();
    assert_eq!(s.mode & go_mode::DIR, go_mode::DIR);
    for missing in ["/nope", "/etc/nope", "/d/x", "/nope/x"] {
        let err = stat_path(&f.root, missing).unwrap_err();
        assert!(
            matches!(err, ArchiveError::NotFound { .. }),
            "{missing}: {err}"
        );
    }
    let header = stat_path(&f.root, "/etc/evil").unwrap().header_value();
    assert!(!header.contains('{'));
}

/// What a tree holds: type, mode, owner, mtime, contents or target, and
/// which files share an inode.
fn snapshot(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut inodes = BTreeMap::new();
    for e in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let e = e.unwrap();
        let rel = e.path().strip_prefix(dir).unwrap().display().to_string();
        let md = e.path().symlink_metadata().unwrap();
        let ft = md.file_type();
        let what = if ft.is_symlink() {
            format!("-> {}", fs::read_link(e.path()).unwrap().display())
        } else if ft.is_file() {
            let first = inodes.entry(md.ino()).or_insert_with(|| rel.clone());
            format!("file {:?} link-of {first}", fs::read(e.path()).unwrap())
        } else {
            let kind = if ft.is_dir() {
                "dir"
            } else if ft.is_fifo() {
                "fifo"
            } else {
                "other"
            };
            kind.to_string()
        };
        let mtime = if ft.is_symlink() { 0 } else { md.mtime() };
        let meta = format!("{:o} {}:{} {mtime}", md.mode(), md.uid(), md.gid());
        out.insert(rel, format!("{what} {meta}"));
    }
    out
}

fn build_tree(base: &Path) {
    fs::create_dir_all(base.join("sub/empty")).unwrap();
    let long = "n".repeat(120);
    let files: [(&str, &[u8], u32); 4] = [
        ("plain", b"hello", 0o644),
        ("sub/script", b"#!/bin/sh\n", 0o755),
        ("sub/suid", b"s", 0o4755),
        ("sub/secret", b"", 0o600),
    ];
    for (name, data, mode) in files {
        let p = base.join(name);
        fs::write(&p, data).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
    }
    std::os::unix::fs::chown(base.join("sub/script"), Some(1000), Some(1001)).unwrap();
    fs::set_permissions(base.join("sub/suid"), fs::Permissions::from_mode(0o4755)).unwrap();
    fs::write(base.join("sub").join(&long), b"long name").unwrap();
    fs::hard_link(base.join("plain"), base.join("sub/hard")).unwrap();
    symlink("../plain", base.join("sub/rel")).unwrap();
    symlink("/etc/passwd", base.join("sub/abs")).unwrap();
    symlink(format!("../{long}"), base.join("sub/empty/longlink")).unwrap();
    nix::unistd::mkfifo(
        &base.join("sub/fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o640),
    )
    .unwrap();
    fs::set_permissions(base.join("sub/empty"), fs::Permissions::from_mode(0o700)).unwrap();
    for p in ["plain", "sub/script", "sub", "sub/empty", "."] {
        let t = filetime(1_600_000_000);
        nix::sys::stat::utimensat(
            None,
            &base.join(p),
            &t,
            &t,
            nix::sys::stat::UtimensatFlags::NoFollowSymlink,
        )
        .unwrap();
    }
}

fn filetime(secs: i64) -> nix::sys::time::TimeSpec {
    nix::sys::time::TimeSpec::new(secs, 0)
}

#[test]
fn round_trip_of_a_tree() {
    let f = fixture();
    let src = f.root.join("srv/data");
    fs::create_dir_all(&src).unwrap();
    build_tree(&src);
    let mut tar = Vec::new();
    let st: PathStat = write_tar_of(&f.root, "/srv/data", &mut tar).unwrap();
    assert_eq!(st.mode & go_mode::DIR, go_mode::DIR);
    let names = tar_names(&tar);
    assert_eq!(names[0], "data/");
    assert!(names.iter().all(|n| n.starts_with("data/")), "{names:?}");
    fs::create_dir(f.root.join("dst")).unwrap();
    let keep = CopyOptions {
        copy_uid_gid: true,
        ..CopyOptions::default()
    };
    extract_tar_into(&f.root, "/dst", Cursor::new(tar.clone()), &keep).unwrap();
    let want = snapshot(&src);
    assert_eq!(want.len(), 13, "{want:#?}");
    assert!(want["sub/hard"].contains("link-of plain"), "{want:#?}");
    assert!(want["sub/suid"].starts_with("file") && want["sub/suid"].contains(" 104755 "));
    assert!(want["sub/fifo"].starts_with("fifo"), "{want:#?}");
    assert_eq!(want, snapshot(&f.root.join("dst/data")));
    // Without copyUIDGID everything belongs to root.
    fs::create_dir(f.root.join("dst2")).unwrap();
    extract_tar_into(&f.root, "/dst2", Cursor::new(tar), &opts()).unwrap();
    let md = fs::metadata(f.root.join("dst2/data/sub/script")).unwrap();
    assert_eq!((md.uid(), md.gid()), (0, 0));

    // `/.` copies the contents, named `./...`; gzip input is accepted.
    let mut tar = Vec::new();
    write_tar_of(&f.root, "/srv/data/.", &mut tar).unwrap();
    let names = tar_names(&tar);
    assert_eq!(names[0], "./");
    assert!(names.iter().all(|n| n.starts_with("./")), "{names:?}");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    fs::create_dir(f.root.join("dst3")).unwrap();
    let gz = gz.finish().unwrap();
    extract_tar_into(&f.root, "/dst3", Cursor::new(gz), &keep).unwrap();
    assert_eq!(snapshot(&src), snapshot(&f.root.join("dst3")));
}

#[test]
fn single_files_are_named_by_their_basename() {
    let f = fixture();
    fs::write(f.root.join("etc/hosts"), "127.0.0.1 localhost\n").unwrap();
    let mut tar = Vec::new();
    write_tar_of(&f.root, "/etc/hosts", &mut tar).unwrap();
    assert_eq!(tar_names(&tar), ["hosts"]);
    let mut tar = Vec::new();
    fs::create_dir_all(f.root.join("var/log")).unwrap();
    fs::write(f.root.join("var/log/a.log"), "a").unwrap();
    write_tar_of(&f.root, "/var/log", &mut tar).unwrap();
    assert_eq!(tar_names(&tar), ["log/", "log/a.log"]);
}

#[test]
fn no_overwrite_dir_non_dir() {
    let f = fixture();
    fs::create_dir_all(f.root.join("tmp/a/inner")).unwrap();
    fs::write(f.root.join("tmp/b"), "file").unwrap();
    let strict = CopyOptions {
        no_overwrite_dir_non_dir: true,
        ..CopyOptions::default()
    };
    let file_over_dir = raw_tar(&[("a", b"now a file")]);
    let err =
        extract_tar_into(&f.root, "/tmp", Cursor::new(file_over_dir.clone()), &strict).unwrap_err();
    assert!(matches!(err, ArchiveError::Overwrite { .. }), "{err}");
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_size(0);
    h.set_mode(0o755);
    b.append_data(&mut h, "b/", &b""[..]).unwrap();
    let dir_over_file = b.into_inner().unwrap();
    let err =
        extract_tar_into(&f.root, "/tmp", Cursor::new(dir_over_file.clone()), &strict).unwrap_err();
    assert!(matches!(err, ArchiveError::Overwrite { .. }), "{err}");
    // Without the option both are replaced.
    extract_tar_into(&f.root, "/tmp", Cursor::new(file_over_dir), &opts()).unwrap();
    extract_tar_into(&f.root, "/tmp", Cursor::new(dir_over_file), &opts()).unwrap();
    assert_eq!(fs::read(f.root.join("tmp/a")).unwrap(), b"now a file");
    assert!(f.root.join("tmp/b").is_dir());
}

/// CVE-2018-15664: while a copy runs, the container keeps exchanging a
/// directory with a symlink that climbs to the host's OUTSIDE. Every copy
/// either works on the container's directory or fails; none reads or
/// writes the host's.
#[test]
fn symlink_exchange_race_never_reaches_the_host() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    let f = fixture();
    fs::write(f.outside.join("secret"), "HOST").unwrap();
    let race = f.root.join("tmp/race");
    let swap = f.root.join("tmp/swap");
    fs::create_dir(&race).unwrap();
    fs::write(race.join("secret"), "CONTAINER").unwrap();
    let climb = format!("../../../../../../../..{}", f.outside.display());
    symlink(&climb, &swap).unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let swapper = {
        let (stop, race, swap) = (stop.clone(), race.clone(), swap.clone());
        std::thread::spawn(move || {
            let flag = nix::fcntl::RenameFlags::RENAME_EXCHANGE;
            while !stop.load(Ordering::Relaxed) {
                nix::fcntl::renameat2(None, &race, None, &swap, flag).unwrap();
            }
        })
    };
    let (mut read_ok, mut write_ok) = (0, 0);
    let name = f.unique.clone();
    let tar = raw_tar(&[(name.as_str(), b"w")]);
    for _ in 0..300 {
        let mut out = Vec::new();
        if write_tar_of(&f.root, "/tmp/race/secret", &mut out).is_ok() {
            assert_eq!(tar_file(&out, "secret").as_deref(), Some("CONTAINER"));
            read_ok += 1;
        }
        if extract_tar_into(&f.root, "/tmp/race", Cursor::new(tar.clone()), &opts()).is_ok() {
            write_ok += 1;
        }
    }
    stop.store(true, Ordering::Relaxed);
    swapper.join().unwrap();
    assert_eq!(
        fs::read_dir(&f.outside).unwrap().count(),
        1,
        "OUTSIDE gained files"
    );
    assert_eq!(fs::read(f.outside.join("secret")).unwrap(), b"HOST");
    eprintln!("race: {read_ok}/300 reads and {write_ok}/300 writes got through");
}
