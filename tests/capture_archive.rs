//! `bundle export` / `bundle import`: a bundle moves to another daemon
//! verified; truncated, corrupted, unknown-version and hostile archives are
//! refused with one line and leave nothing behind.

mod common;

use std::io::Read;
use std::path::Path;

use common::Daemon;

use common::json;

/// A daemon with one bundle of a stopped container; returns its ID.
fn daemon_with_bundle() -> (Daemon, String) {
    let d = Daemon::start();
    d.import_busybox("busybox");
    d.ok(&[
        "run",
        "--name",
        "src",
        "-e",
        "ORIGIN=one",
        "busybox",
        "sh",
        "-c",
        "echo exported-line; head -c 3000000 /dev/urandom > /blob.bin; echo kept > /keep.txt",
    ]);
    let id = d
        .ok(&["capture", "src", "-l", "to move"])
        .trim()
        .to_string();
    (d, id)
}

fn entries(tar_path: &Path) -> Vec<(String, Vec<u8>)> {
    let mut a = tar::Archive::new(std::fs::File::open(tar_path).unwrap());
    a.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let p = e.path().unwrap().to_string_lossy().into_owned();
            let mut v = Vec::new();
            e.read_to_end(&mut v).unwrap();
            (p, v)
        })
        .collect()
}

fn write_tar(path: &Path, entries: &[(String, Vec<u8>)]) {
    let mut b = tar::Builder::new(std::fs::File::create(path).unwrap());
    for (p, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_path(p).unwrap_or_else(|_| {
            // `tar` refuses `..` in set_path; write the name bytes directly.
            h.as_old_mut().name[..p.len()].copy_from_slice(p.as_bytes());
        });
        h.set_cksum();
        b.append(&h, &data[..]).unwrap();
    }
    b.finish().unwrap();
}

#[test]
fn export_then_import_on_another_daemon() {
    let (d1, id) = daemon_with_bundle();
    let out = d1.dir.path().join("bundle.tar");
    d1.ok(&["bundle", "export", &id, "-o", out.to_str().unwrap()]);
    // Self-describing: the index, the manifest and blobs named by digest.
    let es = entries(&out);
    assert_eq!(es[0].0, "amber-bundle.json");
    assert_eq!(es[1].0, "manifest.json");
    let index = json(std::str::from_utf8(&es[0].1).unwrap());
    assert_eq!(index["format_version"], 1);
    assert_eq!(index["bundle"], id.as_str());
    for (p, data) in &es[2..] {
        let hex = p.strip_prefix("blobs/sha256/").unwrap();
        assert_eq!(common::sha256_hex(data), hex);
    }
    assert_eq!(es.len() - 2, index["blobs"].as_array().unwrap().len());

    let d2 = Daemon::start();
    let t = std::time::Instant::now();
    let imported = d2.ok(&["bundle", "import", out.to_str().unwrap()]);
    eprintln!(
        "import of {} bytes took {} ms",
        std::fs::metadata(&out).unwrap().len(),
        t.elapsed().as_millis()
    );
    assert_eq!(imported.trim(), id);
    let ls = json(&d2.ok(&["bundle", "ls", "--format", "json"]));
    assert_eq!(ls[0]["id"], id.as_str());
    assert_eq!(ls[0]["label"], "to move");
    assert_eq!(d2.ok(&["bundle", "cat", &id, "src:/keep.txt"]), "kept\n");
    let hits = json(&d2.ok(&["bundle", "search", "exported-line", "--format", "json"]));
    assert_eq!(hits[0]["container"], "src");
    assert_eq!(
        d1.ok(&["bundle", "inspect", &id]),
        d2.ok(&["bundle", "inspect", &id])
    );
    // A second import of the same bundle is refused.
    let err = d2.fails(&["bundle", "import", out.to_str().unwrap()]);
    assert!(err.contains("already exists"), "{err}");
    d2.assert_check_clean();
    // And it exports again to the same bytes.
    let again = d2.dir.path().join("again.tar");
    d2.ok(&["bundle", "export", &id, "-o", again.to_str().unwrap()]);
    assert_eq!(std::fs::read(&again).unwrap(), std::fs::read(&out).unwrap());

    // The archive carried the image: d2 never had busybox, and the same
    // image (same ID, tag) is there now, so the container restores and runs.
    let image_id = d1.ok(&["image", "inspect", "-f", "{{.Id}}", "busybox"]);
    assert_eq!(index["images"][0]["id"], image_id.trim());
    assert_eq!(
        d2.ok(&["image", "inspect", "-f", "{{.Id}}", "busybox"]),
        image_id
    );
    d2.ok(&["restore", &id]);
    assert!(d2.ok(&["diff", "src"]).contains("A /keep.txt"));
    d2.ok(&["start", "src"]);
    d2.ok(&["wait", "src"]);
    let logs = d2.ok(&["logs", "src"]);
    assert_eq!(logs.matches("exported-line").count(), 2, "{logs}");
    d2.assert_check_clean();

    // Without images the archive is smaller and the importing host must
    // have the image: restore says so.
    let bare = d1.dir.path().join("bare.tar");
    d1.ok(&[
        "bundle",
        "export",
        "--no-images",
        &id,
        "-o",
        bare.to_str().unwrap(),
    ]);
    assert!(
        std::fs::metadata(&bare).unwrap().len() + 1_000_000
            < std::fs::metadata(&out).unwrap().len()
    );
    let d3 = Daemon::start();
    d3.ok(&["bundle", "import", bare.to_str().unwrap()]);
    let err = d3.fails(&["restore", &id]);
    assert!(err.contains("pull or load it"), "{err}");
    d3.assert_check_clean();
    d1.remove_all_containers();
    d2.remove_all_containers();
}

#[test]
fn bad_archives_are_refused_and_leave_nothing() {
    let (d1, id) = daemon_with_bundle();
    let good = d1.dir.path().join("good.tar");
    d1.ok(&["bundle", "export", &id, "-o", good.to_str().unwrap()]);
    let es = entries(&good);
    let bytes = std::fs::read(&good).unwrap();
    let dir = d1.dir.path();

    let mut cases: Vec<(&str, std::path::PathBuf, &str)> = Vec::new();
    // Truncated in the middle of a blob.
    let p = dir.join("truncated.tar");
    std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
    cases.push(("truncated", p, "truncated"));
    // One blob's content changed (same name and size).
    let mut bad = es.clone();
    let big = bad.iter_mut().max_by_key(|(_, d)| d.len()).unwrap();
    big.1[100] ^= 0xff;
    let p = dir.join("wrong-digest.tar");
    write_tar(&p, &bad);
    cases.push(("wrong digest", p, "does not match its digest"));
    // Unknown format version.
    let mut bad = es.clone();
    let mut index = json(std::str::from_utf8(&bad[0].1).unwrap());
    index["format_version"] = 2.into();
    bad[0].1 = serde_json::to_vec(&index).unwrap();
    let p = dir.join("version.tar");
    write_tar(&p, &bad);
    cases.push(("format version", p, "unsupported bundle format version 2"));
    // A blob missing.
    let mut bad = es.clone();
    bad.remove(3);
    let p = dir.join("missing.tar");
    write_tar(&p, &bad);
    cases.push(("missing blob", p, "missing"));
    // A path escaping the archive.
    let mut bad = es.clone();
    bad.push(("../../escape".into(), b"x".to_vec()));
    let p = dir.join("escape.tar");
    write_tar(&p, &bad);
    cases.push(("path escape", p, "unexpected entry"));
    // Not a tar at all.
    let p = dir.join("garbage.tar");
    std::fs::write(&p, vec![0x5a; 4096]).unwrap();
    cases.push(("garbage", p, "bad bundle archive"));

    let d2 = Daemon::start();
    let blobs_before = d2.entries("blobs/sha256").len();
    for (what, path, want) in &cases {
        let err = d2.fails(&["bundle", "import", path.to_str().unwrap()]);
        assert!(err.contains(want), "{what}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{what}: {err}");
        assert!(d2.ok(&["bundle", "ls", "-q"]).trim().is_empty(), "{what}");
        assert_eq!(d2.entries("blobs/sha256").len(), blobs_before, "{what}");
        assert!(
            d2.entries("tmp").is_empty(),
            "{what}: {:?}",
            d2.entries("tmp")
        );
        assert!(!Path::new("/escape").exists());
    }
    d2.assert_check_clean();
    // The good archive still imports.
    d2.ok(&["bundle", "import", good.to_str().unwrap()]);
    d2.assert_check_clean();
    d1.remove_all_containers();
}

#[test]
fn kill9_mid_import_leaves_nothing() {
    let (d1, id) = daemon_with_bundle();
    let archive = d1.dir.path().join("bundle.tar");
    d1.ok(&["bundle", "export", &id, "-o", archive.to_str().unwrap()]);
    let bytes = std::fs::read(&archive).unwrap();
    let mut d2 = Daemon::start();
    let blobs_before = d2.entries("blobs/sha256").len();
    // Send most of the archive, keep the connection open, kill the daemon.
    let mut import = std::process::Command::new(common::amber_bin())
        .args(["-H", &d2.host(), "bundle", "import"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = import.stdin.take().unwrap();
    use std::io::Write;
    stdin.write_all(&bytes[..bytes.len() * 3 / 4]).unwrap();
    stdin.flush().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while d2.entries("tmp").is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the import never staged anything"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    d2.kill9();
    drop(stdin);
    let _ = import.wait();
    d2.spawn();
    assert!(d2.ok(&["bundle", "ls", "-q"]).trim().is_empty());
    assert_eq!(d2.entries("blobs/sha256").len(), blobs_before);
    assert!(d2.entries("tmp").is_empty());
    d2.assert_check_clean();
    // And the whole archive imports afterwards.
    d2.ok(&["bundle", "import", archive.to_str().unwrap()]);
    d2.assert_check_clean();
    d1.remove_all_containers();
}
