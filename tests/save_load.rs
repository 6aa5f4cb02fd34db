//! `save` and `load` end to end: every format and compression round-trips
//! between two daemons, a layer comes back byte for byte as it was
//! imported, saves are deterministic, the docker CLI drives both, the
//! pre-Docker-25 layout (with symlinked layers) loads, and layers the store
//! has are not added again.

mod common;

use std::io::{Cursor, Read};
use std::path::Path;
use std::process::{Command, Stdio};

use common::{stderr, stdout, Daemon};
use serde_json::json;
use sha2::{Digest as _, Sha256};

fn sha(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// Entries of a tar file: name → bytes (regular files only).
fn tar_files(data: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut a = tar::Archive::new(Cursor::new(data));
    let mut out = Vec::new();
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        if e.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        let name = e.path().unwrap().to_string_lossy().into_owned();
        let mut b = Vec::new();
        e.read_to_end(&mut b).unwrap();
        out.push((name, b));
    }
    out
}

fn file<'a>(files: &'a [(String, Vec<u8>)], name: &str) -> &'a [u8] {
    &files
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("{name} not in archive"))
        .1
}

fn image_id(d: &Daemon, name: &str) -> String {
    d.ok(&["inspect", "-f", "{{.Id}}", name]).trim().to_string()
}

/// A source daemon with `bb:1`, `bb:2` (same image) and `bb:committed`
/// (two layers, the top one made by commit).
fn source() -> Daemon {
    let d = Daemon::start();
    d.import_busybox("bb:1");
    d.ok(&["tag", "bb:1", "bb:2"]);
    d.ok(&[
        "run",
        "--name",
        "writer",
        "bb:1",
        "sh",
        "-c",
        "echo committed-data > /data.txt; rm /etc/group; mkdir -p /opt/x",
    ]);
    d.ok(&[
        "commit",
        "-c",
        "CMD [\"cat\", \"/data.txt\"]",
        "writer",
        "bb:committed",
    ]);
    d.ok(&["rm", "writer"]);
    d
}

#[test]
fn round_trip_every_format_and_compression() {
    let src = source();
    let dst = Daemon::start();
    let dir = src.dir.path();
    let ids = [image_id(&src, "bb:1"), image_id(&src, "bb:committed")];
    for format in ["docker", "oci"] {
        for compress in ["none", "gzip", "zstd"] {
            let out = dir.join(format!("{format}-{compress}.tar"));
            let out_s = out.to_str().unwrap();
            src.ok(&[
                "save",
                "--format",
                format,
                "--compress",
                compress,
                "-o",
                out_s,
                "bb",
            ]);
            let data = std::fs::read(&out).unwrap();
            let files = tar_files(&data);
            assert_eq!(
                files.iter().any(|(n, _)| n == "manifest.json"),
                format == "docker",
                "{format}"
            );
            // Every blob is named by its digest.
            for (n, b) in &files {
                if let Some(hex) = n.strip_prefix("blobs/sha256/") {
                    assert_eq!(sha(b), format!("sha256:{hex}"), "{format}/{compress} {n}");
                }
            }
            let loaded = dst.ok(&["load", "-i", out_s]);
            for tag in ["bb:1", "bb:2", "bb:committed"] {
                assert!(
                    loaded.contains(&format!("Loaded image: {tag}")),
                    "{format}/{compress}: {loaded}"
                );
            }
            assert_eq!(image_id(&dst, "bb:1"), ids[0]);
            assert_eq!(image_id(&dst, "bb:2"), ids[0]);
            assert_eq!(image_id(&dst, "bb:committed"), ids[1]);
            let ran = dst.ok(&["run", "--rm", "bb:committed"]);
            assert_eq!(ran.trim(), "committed-data", "{format}/{compress}");
            let gone = dst.amber(&["run", "--rm", "bb:committed", "ls", "/etc/group"]);
            assert!(!gone.status.success(), "the whiteout survived the trip");
            dst.assert_check_clean();
            dst.ok(&["rmi", "bb:1", "bb:2", "bb:committed"]);
            assert!(dst.entries("layers").is_empty(), "{format}/{compress}");
        }
    }
}

#[test]
fn imported_layer_is_saved_byte_for_byte() {
    // A tar no deterministic writer would produce: GNU headers, unsorted
    // entries, a long name, odd owners and times, a hardlink, trailing
    // zero records as GNU tar writes them.
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |name: &str, kind: tar::EntryType, data: &[u8], link: Option<&str>| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(data.len() as u64);
        h.set_mode(if kind == tar::EntryType::Directory {
            0o750
        } else {
            0o640
        });
        h.set_uid(1234);
        h.set_gid(99);
        h.set_mtime(1_234_567_890);
        if let Some(l) = link {
            h.set_link_name(l).unwrap();
        }
        b.append_data(&mut h, name, data).unwrap();
    };
    add("zeta/", tar::EntryType::Directory, b"", None);
    add("zeta/file", tar::EntryType::Regular, b"zzz\n", None);
    add("alpha/", tar::EntryType::Directory, b"", None);
    let long = format!("alpha/{}", "n".repeat(150));
    add(&long, tar::EntryType::Regular, &vec![7u8; 70_000], None);
    add("alpha/hard", tar::EntryType::Link, b"", Some("zeta/file"));
    add(
        "alpha/sym",
        tar::EntryType::Symlink,
        b"",
        Some("../zeta/file"),
    );
    let mut original = b.into_inner().unwrap();
    original.resize(original.len().div_ceil(10240) * 10240 + 10240, 0);

    let d = Daemon::start();
    let tar_path = d.dir.path().join("odd.tar");
    std::fs::write(&tar_path, &original).unwrap();
    d.ok(&["import", tar_path.to_str().unwrap(), "odd:1"]);
    let layer = d.ok(&["inspect", "-f", "{{index .RootFS.Layers 0}}", "odd:1"]);
    assert_eq!(layer.trim(), sha(&original));

    let out = d.dir.path().join("odd-save.tar");
    d.ok(&["save", "-o", out.to_str().unwrap(), "odd:1"]);
    let files = tar_files(&std::fs::read(&out).unwrap());
    let blob = file(&files, &format!("blobs/sha256/{}", &sha(&original)[7..]));
    assert!(
        blob == &original[..],
        "the saved layer is the imported tar, byte for byte"
    );

    // Saving twice gives the same archive.
    let out2 = d.dir.path().join("odd-save2.tar");
    d.ok(&["save", "-o", out2.to_str().unwrap(), "odd:1"]);
    assert!(std::fs::read(&out).unwrap() == std::fs::read(&out2).unwrap());

    // A layer that no longer matches its digest is refused, not sent.
    let path = d
        .root()
        .join("layers")
        .join(&sha(&original)[7..])
        .join("diff/zeta/file");
    std::fs::write(&path, b"tampered\n").unwrap();
    let out3 = d.dir.path().join("odd-save3.tar");
    let err = d.fails(&["save", "-o", out3.to_str().unwrap(), "odd:1"]);
    assert!(!out3.exists(), "no archive left after a failed save: {err}");
}

#[test]
fn docker_cli_saves_and_loads_against_amber() {
    let src = source();
    let dst = Daemon::start();
    let out = src.dir.path().join("docker-save.tar");
    let o = src.docker(&["save", "-o", out.to_str().unwrap(), "bb:committed", "bb:1"]);
    assert!(o.status.success(), "docker save: {}", stderr(&o));
    let o = dst.docker(&["load", "-i", out.to_str().unwrap()]);
    assert!(o.status.success(), "docker load: {}", stderr(&o));
    let printed = stdout(&o);
    assert!(printed.contains("Loaded image: bb:committed"), "{printed}");
    assert!(printed.contains("Loaded image: bb:1"), "{printed}");
    assert_eq!(
        image_id(&dst, "bb:committed"),
        image_id(&src, "bb:committed")
    );
    // A second load of the same archive adds nothing.
    let again = dst.ok(&["load", "-i", out.to_str().unwrap()]);
    assert!(again.contains("Already exists"), "{again}");
    dst.assert_check_clean();
}

#[test]
fn pipes_and_whole_stream_compression() {
    let src = source();
    let dst = Daemon::start();
    for filter in ["cat", "gzip -1", "zstd -q -1"] {
        let script = format!(
            "{bin} -H {s} save bb:committed | {filter} | {bin} -H {d} load",
            bin = common::amber_bin(),
            s = src.host(),
            d = dst.host()
        );
        let o = Command::new("sh").arg("-c").arg(&script).output().unwrap();
        assert!(o.status.success(), "{script}: {}", stderr(&o));
        assert!(stdout(&o).contains("Loaded image: bb:committed"));
        assert_eq!(
            dst.ok(&["run", "--rm", "bb:committed"]).trim(),
            "committed-data"
        );
        dst.ok(&["rmi", "bb:committed"]);
    }
    // stdout to a terminal is refused; stdin empty is refused.
    let o = Command::new(common::amber_bin())
        .args(["-H", &dst.host(), "load"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!o.status.success());
}

/// `save -o` into a device, a FIFO or through a symlink writes into what is
/// there: the device stays a device (`-o /dev/null` once replaced the
/// host's /dev/null with a file), the reader of the FIFO gets the archive,
/// the symlink stays a link to the archive. A directory is refused.
#[test]
fn save_into_a_device_a_fifo_or_a_symlink_keeps_them() {
    use std::os::unix::fs::FileTypeExt;
    let d = Daemon::start();
    d.import_busybox("bb:1");
    let dir = tempfile::tempdir().unwrap();
    let expected = d.amber(&["save", "bb:1"]).stdout;
    assert!(!expected.is_empty());

    let null = dir.path().join("null");
    nix::sys::stat::mknod(
        &null,
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::from_bits_truncate(0o666),
        nix::sys::stat::makedev(1, 3),
    )
    .unwrap();
    d.ok(&["save", "-o", null.to_str().unwrap(), "bb:1"]);
    assert!(std::fs::symlink_metadata(&null)
        .unwrap()
        .file_type()
        .is_char_device());

    let fifo = dir.path().join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read(fifo).unwrap())
    };
    d.ok(&["save", "-o", fifo.to_str().unwrap(), "bb:1"]);
    assert_eq!(reader.join().unwrap(), expected);
    assert!(std::fs::symlink_metadata(&fifo)
        .unwrap()
        .file_type()
        .is_fifo());

    let real = dir.path().join("real.tar");
    let link = dir.path().join("link.tar");
    std::fs::write(&real, b"old").unwrap();
    std::os::unix::fs::symlink(&real, &link).unwrap();
    d.ok(&["save", "-o", link.to_str().unwrap(), "bb:1"]);
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(std::fs::read(&real).unwrap(), expected);

    let err = d.fails(&["save", "-o", dir.path().to_str().unwrap(), "bb:1"]);
    assert!(err.contains("is a directory"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

/// Build an archive in the layout `docker save` wrote before Docker 25:
/// `<v1 id>/layer.tar`, a second image whose layer is a symlink to the
/// first one's, `<config hex>.json`, `manifest.json`, `repositories`.
fn pre25_archive(layer: &[u8]) -> (Vec<u8>, [String; 2]) {
    let diff_id = sha(layer);
    let config = |cmd: &str| {
        serde_json::to_vec(&json!({
            "architecture": "amd64",
            "os": "linux",
            "config": {"Cmd": [cmd]},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            "history": [{"created_by": "test"}],
        }))
        .unwrap()
    };
    let (c1, c2) = (config("sh"), config("true"));
    let (id1, id2) = (sha(&c1), sha(&c2));
    let v1a = "a".repeat(64);
    let v1b = "b".repeat(64);
    let manifest = serde_json::to_vec(&json!([
        {"Config": format!("{}.json", &id1[7..]), "RepoTags": ["old:one"], "Layers": [format!("{v1a}/layer.tar")]},
        {"Config": format!("{}.json", &id2[7..]), "RepoTags": ["old:two"], "Layers": [format!("{v1b}/layer.tar")]},
    ]))
    .unwrap();
    let mut b = tar::Builder::new(Vec::new());
    let mut put = |name: &str, data: &[u8]| {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, name, data).unwrap();
    };
    put(&format!("{v1a}/VERSION"), b"1.0");
    put(&format!("{v1a}/layer.tar"), layer);
    put(&format!("{}.json", &id1[7..]), &c1);
    put(&format!("{}.json", &id2[7..]), &c2);
    put("manifest.json", &manifest);
    put("repositories", b"{}");
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    h.set_mode(0o777);
    b.append_link(
        &mut h,
        format!("{v1b}/layer.tar"),
        format!("../{v1a}/layer.tar"),
    )
    .unwrap();
    (b.into_inner().unwrap(), [id1, id2])
}

#[test]
fn loads_the_pre_docker_25_layout_with_symlinked_layers() {
    let d = Daemon::start();
    let layer = std::fs::read(common::busybox_tar()).unwrap();
    let (archive, ids) = pre25_archive(&layer);
    let path = d.dir.path().join("pre25.tar");
    std::fs::write(&path, &archive).unwrap();
    let out = d.ok(&["load", "-i", path.to_str().unwrap()]);
    assert!(
        out.contains("Loaded image: old:one") && out.contains("Loaded image: old:two"),
        "{out}"
    );
    assert_eq!(image_id(&d, "old:one"), ids[0]);
    assert_eq!(image_id(&d, "old:two"), ids[1]);
    assert_eq!(d.entries("layers").len(), 1, "one layer, stored once");
    assert_eq!(d.ok(&["run", "--rm", "old:one", "echo", "hi"]).trim(), "hi");
    d.assert_check_clean();
    assert!(d.entries("tmp").is_empty());
}

/// What a user sees for a bad archive: one clear line, a failure, and no
/// trace in the store.
fn assert_refused(d: &Daemon, archive: &[u8], what: &str, expect: &str) {
    let path = d.dir.path().join("bad.tar");
    std::fs::write(&path, archive).unwrap();
    let before = d.ok(&["images", "-q", "--no-trunc"]);
    let out = d.amber(&["load", "-i", path.to_str().unwrap()]);
    let err = stderr(&out);
    assert!(
        !out.status.success(),
        "{what}: load succeeded: {}",
        stdout(&out)
    );
    assert_eq!(err.trim().lines().count(), 1, "{what}: one line: {err}");
    assert!(err.contains(expect), "{what}: {err}");
    assert_eq!(d.ok(&["images", "-q", "--no-trunc"]), before, "{what}");
    assert!(
        d.entries("tmp").is_empty(),
        "{what}: staging left: {:?}",
        d.entries("tmp")
    );
    d.assert_check_clean();
}

/// A tar with raw (unchecked) entry names.
fn raw_tar(entries: &[(&str, tar::EntryType, &[u8], Option<&str>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, kind, data, link) in entries {
        let mut h = tar::Header::new_gnu();
        h.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_entry_type(*kind);
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        if let Some(l) = link {
            h.as_gnu_mut().unwrap().linkname[..l.len()].copy_from_slice(l.as_bytes());
        }
        h.set_cksum();
        b.append(&h, *data).unwrap();
    }
    b.into_inner().unwrap()
}

#[test]
fn hostile_and_broken_archives_are_refused_cleanly() {
    let d = Daemon::start();
    d.import_busybox("keep:me");
    let layer = std::fs::read(common::busybox_tar()).unwrap();
    let (good, _) = pre25_archive(&layer);
    let outside = d.dir.path().join("escaped");
    use tar::EntryType as T;

    assert_refused(&d, b"", "empty input", "invalid image archive");
    assert_refused(&d, &[0x42; 4096], "not a tar", "invalid image archive");
    assert_refused(
        &d,
        &good[..good.len() / 2],
        "truncated",
        "invalid image archive",
    );
    let escape_name = raw_tar(&[("../escaped", T::Regular, b"x", None)]);
    assert_refused(&d, &escape_name, "`..` entry", "..");
    let abs = raw_tar(&[("/tmp/escaped", T::Regular, b"x", None)]);
    assert_refused(&d, &abs, "absolute entry", "absolute");
    let link_out = raw_tar(&[(
        "manifest.json",
        T::Symlink,
        b"",
        Some("../../../etc/passwd"),
    )]);
    assert_refused(
        &d,
        &link_out,
        "symlink out of the archive",
        "outside the archive",
    );
    let dup = raw_tar(&[
        ("manifest.json", T::Regular, b"[]", None),
        ("manifest.json", T::Regular, b"[]", None),
    ]);
    assert_refused(&d, &dup, "duplicate entry", "duplicate");
    let dev = raw_tar(&[("dev", T::Char, b"", None)]);
    assert_refused(&d, &dev, "device node", "unsupported entry type");
    // A 1 MiB GNU long name.
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(1);
    h.set_mode(0o644);
    b.append_data(&mut h, "x".repeat(1 << 20), &b"x"[..])
        .unwrap();
    assert_refused(
        &d,
        &b.into_inner().unwrap(),
        "huge header",
        "longer than 4096 bytes",
    );
    let no_manifest = raw_tar(&[("hello", T::Regular, b"hi", None)]);
    assert_refused(
        &d,
        &no_manifest,
        "no manifest",
        "no manifest.json or index.json",
    );

    // A manifest pointing at a missing layer.
    let missing = raw_tar(&[(
        "manifest.json",
        T::Regular,
        br#"[{"Config":"c.json","RepoTags":["x:y"],"Layers":["nope/layer.tar"]}]"#,
        None,
    )]);
    assert_refused(&d, &missing, "missing blob", "missing");

    // A layer blob whose content is not the digest it is named by.
    let cfg = serde_json::to_vec(&json!({"rootfs": {"type": "layers", "diff_ids": [sha(&layer)]}}))
        .unwrap();
    let wrong = format!("blobs/sha256/{}", "0".repeat(64));
    let cfg_name = format!("blobs/sha256/{}", &sha(&cfg)[7..]);
    let manifest =
        serde_json::to_vec(&json!([{"Config": cfg_name, "RepoTags": ["x:y"], "Layers": [wrong]}]))
            .unwrap();
    let mismatch = raw_tar(&[
        (&wrong, T::Regular, &layer, None),
        (&cfg_name, T::Regular, &cfg, None),
        ("manifest.json", T::Regular, &manifest, None),
    ]);
    assert_refused(
        &d,
        &mismatch,
        "blob digest mismatch",
        "does not match its digest",
    );

    // A config whose diff_ids do not name the layer.
    let cfg = serde_json::to_vec(
        &json!({"rootfs": {"type": "layers", "diff_ids": [format!("sha256:{}", "1".repeat(64))]}}),
    )
    .unwrap();
    let cfg_name = format!("blobs/sha256/{}", &sha(&cfg)[7..]);
    let lname = format!("blobs/sha256/{}", &sha(&layer)[7..]);
    let manifest =
        serde_json::to_vec(&json!([{"Config": cfg_name, "RepoTags": ["x:y"], "Layers": [lname]}]))
            .unwrap();
    let bad_diff = raw_tar(&[
        (&lname, T::Regular, &layer, None),
        (&cfg_name, T::Regular, &cfg, None),
        ("manifest.json", T::Regular, &manifest, None),
    ]);
    assert_refused(&d, &bad_diff, "diff_id mismatch", "the config says");

    // A layer that climbs out of its root, and one whose symlink leads out.
    let big = vec![b'x'; 2 << 20];
    for (what, evil, expect) in [
        (
            "layer with ..",
            raw_tar(&[("../../escaped", T::Regular, &big, None)]),
            "..",
        ),
        (
            "layer symlink escape",
            raw_tar(&[
                ("lnk", T::Symlink, b"", Some("../../../..")),
                ("lnk/escaped", T::Regular, &big, None),
            ]),
            "outside",
        ),
    ] {
        let cfg =
            serde_json::to_vec(&json!({"rootfs": {"type": "layers", "diff_ids": [sha(&evil)]}}))
                .unwrap();
        let cfg_name = format!("{}.json", &sha(&cfg)[7..]);
        let manifest = serde_json::to_vec(
            &json!([{"Config": cfg_name, "RepoTags": ["x:y"], "Layers": ["l/layer.tar"]}]),
        )
        .unwrap();
        let a = raw_tar(&[
            ("l/layer.tar", T::Regular, &evil, None),
            (&cfg_name, T::Regular, &cfg, None),
            ("manifest.json", T::Regular, &manifest, None),
        ]);
        assert_refused(&d, &a, what, expect);
    }
    assert!(!outside.exists());
    assert!(!Path::new("/tmp/escaped").exists() || std::fs::read("/tmp/escaped").unwrap() != b"x");
    // The good archive still loads after all that.
    let path = d.dir.path().join("good.tar");
    std::fs::write(&path, &good).unwrap();
    d.ok(&["load", "-i", path.to_str().unwrap()]);
    d.assert_check_clean();
}

#[test]
fn system_check_verifies_cached_compressed_blobs() {
    let d = Daemon::start();
    d.import_busybox("bb:1");
    let out = d.dir.path().join("gz.tar");
    d.ok(&[
        "save",
        "--compress",
        "gzip",
        "-o",
        out.to_str().unwrap(),
        "bb:1",
    ]);
    d.assert_check_clean();
    let layer = d.entries("layers").pop().unwrap();
    let dir = d.root().join("layers").join(&layer);
    let cached = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("gzip-")
        })
        .expect("the gzip blob is cached beside the layer");
    let mut data = std::fs::read(&cached).unwrap();
    let n = data.len();
    data[n / 2] ^= 0xff;
    std::fs::write(&cached, data).unwrap();
    let o = d.amber(&["system", "check"]);
    assert!(!o.status.success());
    assert!(
        stdout(&o).contains("does not match its digest"),
        "{}",
        stdout(&o)
    );
}
