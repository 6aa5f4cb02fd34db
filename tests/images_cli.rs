//! End to end: `amber daemon` on a temporary root, driven by the `amber`
//! CLI — import, images, inspect, tag, rmi, system check, errors.

mod common;

use common::{stderr, Daemon};
use serde_json::Value;

fn images_json(d: &Daemon) -> Vec<Value> {
    d.ok(&["images", "--format", "json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn import_list_inspect_tag_and_remove() {
    let d = Daemon::start();
    let id = d.import_busybox("busybox");
    assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");

    let rows = images_json(&d);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["Repository"], "busybox");
    assert_eq!(rows[0]["Tag"], "latest");
    assert_eq!(rows[0]["ID"], id[7..19]);

    // Inspect by name, full ID and ID prefix all agree.
    for name in ["busybox", "busybox:latest", &id, &id[7..19], &id[7..10]] {
        assert_eq!(
            d.ok(&["inspect", "--format", "{{.Id}}", name]).trim(),
            id,
            "{name}"
        );
    }
    let inspect: Value = serde_json::from_str(&d.ok(&["image", "inspect", "busybox"])).unwrap();
    let layers = inspect[0]["RootFS"]["Layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1);
    assert_eq!(
        inspect[0]["RepoTags"],
        serde_json::json!(["busybox:latest"])
    );
    // The layer dir holds the rootfs.
    let upper = inspect[0]["GraphDriver"]["Data"]["UpperDir"]
        .as_str()
        .unwrap();
    assert!(std::path::Path::new(upper).join("bin/busybox").is_file());

    d.ok(&["tag", "busybox", "localhost:5000/team/bb:v1"]);
    d.ok(&["image", "tag", &id[7..19], "bb2"]);
    let tags: Vec<String> = images_json(&d)
        .iter()
        .map(|r| {
            format!(
                "{}:{}",
                r["Repository"].as_str().unwrap(),
                r["Tag"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(tags.len(), 3, "{tags:?}");
    assert!(tags.contains(&"localhost:5000/team/bb:v1".to_string()));
    assert_eq!(
        d.ok(&["images", "-q"]).lines().count(),
        1,
        "-q lists each image once"
    );

    // By ID with tags of several repositories: refused unless forced.
    let err = d.fails(&["rmi", &id[7..19]]);
    assert!(
        err.contains("must be forced") && err.lines().count() == 1,
        "{err}"
    );
    // Untagging one name keeps the image.
    let out = d.ok(&["rmi", "bb2"]);
    assert_eq!(out.trim(), "Untagged: bb2:latest");
    assert_eq!(images_json(&d).len(), 2);
    let out = d.ok(&["rmi", "-f", &id[7..19]]);
    assert!(
        out.contains("Untagged: busybox:latest") && out.contains(&format!("Deleted: {id}")),
        "{out}"
    );
    assert!(images_json(&d).is_empty());
    assert!(
        d.entries("layers").is_empty(),
        "layer dir removed with its last image"
    );
    d.assert_check_clean();
}

#[test]
fn import_compressed_with_changes_and_message() {
    let d = Daemon::start();
    let tar = std::fs::read(common::busybox_tar()).unwrap();
    let dir = d.dir.path();
    let gz = dir.join("bb.tar.gz");
    let mut enc = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz).unwrap(),
        flate2::Compression::fast(),
    );
    std::io::Write::write_all(&mut enc, &tar).unwrap();
    enc.finish().unwrap();
    let zst = dir.join("bb.tar.zst");
    std::fs::write(&zst, zstd::encode_all(&tar[..], 3).unwrap()).unwrap();

    let plain = d.import_busybox("plain");
    let a = d.ok(&[
        "import",
        "-m",
        "from gzip",
        "-c",
        "CMD [\"/bin/sh\"]",
        "-c",
        "ENV A=1",
        gz.to_str().unwrap(),
        "gz:1",
    ]);
    let b = d.ok(&["import", zst.to_str().unwrap(), "zst:1"]);
    // The same rootfs gives the same layer whatever the compression.
    let layer = |n: &str| d.ok(&["inspect", "--format", "{{json .RootFS.Layers}}", n]);
    assert_eq!(layer("gz:1"), layer("zst:1"));
    assert_eq!(layer("gz:1"), layer("plain"));
    assert_ne!(a.trim(), b.trim());
    assert_ne!(plain, b.trim());
    assert_eq!(d.entries("layers").len(), 1, "identical layers stored once");
    let v: Value = serde_json::from_str(&d.ok(&["inspect", "gz:1"])).unwrap();
    assert_eq!(v[0]["Config"]["Cmd"], serde_json::json!(["/bin/sh"]));
    assert_eq!(v[0]["Config"]["Env"], serde_json::json!(["A=1"]));
    assert_eq!(v[0]["Comment"], "from gzip");

    // Standard input works too.
    let out = std::process::Command::new(common::amber_bin())
        .args(["-H", &d.host(), "import", "-", "stdin:1"])
        .stdin(std::fs::File::open(common::busybox_tar()).unwrap())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    d.ok(&["inspect", "stdin:1"]);
    d.assert_check_clean();
}

#[test]
fn bad_names_and_missing_images_are_one_line_errors() {
    let d = Daemon::start();
    for (args, want) in [
        (vec!["inspect", "nothere"], "No such object: nothere"),
        (vec!["rmi", "nothere"], "No such image: nothere:latest"),
        (vec!["tag", "nothere", "x"], "No such image: nothere:latest"),
        (vec!["rmi", "Bad/Name"], "invalid reference format"),
        (vec!["tag", "x", "UPPER"], "invalid reference format"),
        (
            vec!["import", "/does/not/exist"],
            "cannot open /does/not/exist",
        ),
    ] {
        let err = d.fails(&args);
        assert!(err.contains(want), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
    }
    // An ambiguous prefix is refused, a unique one accepted. 17 images
    // make two share a first hex digit (pigeonhole); names are not hex.
    let mut ids: Vec<String> = Vec::new();
    let (a, b) = loop {
        let id = d.import_busybox(&format!("img-{}", ids.len()));
        if let Some(other) = ids.iter().find(|o| o.as_bytes()[7] == id.as_bytes()[7]) {
            break (id.clone(), other.clone());
        }
        ids.push(id);
    };
    let common = a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
    let err = d.fails(&["inspect", "--type", "image", &a[7..common]]);
    assert!(err.contains("ambiguous"), "{err}");
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.Id}}", &a[7..common + 1]])
            .trim(),
        a
    );
}

#[test]
fn no_daemon_lock_and_socket_errors() {
    let dir = tempfile::tempdir().unwrap();
    let sock = format!("unix://{}/none.sock", dir.path().display());
    let out = std::process::Command::new(common::amber_bin())
        .args(["-H", &sock, "images"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("Cannot connect to the amber daemon") && err.contains("amber daemon"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1);

    let d = Daemon::start();
    // A second daemon on the same data root is refused and says why.
    let other = format!("unix://{}/second.sock", dir.path().display());
    let out = std::process::Command::new(common::amber_bin())
        .args([
            "daemon",
            "--data-root",
            d.root().to_str().unwrap(),
            "-H",
            &other,
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("in use by another amber daemon"),
        "{}",
        stderr(&out)
    );
    assert!(
        !dir.path().join("second.sock").exists(),
        "refused daemon leaves no socket"
    );
    // A second daemon on the same socket is refused too.
    let out = std::process::Command::new(common::amber_bin())
        .args([
            "daemon",
            "--data-root",
            dir.path().join("r2").to_str().unwrap(),
            "-H",
            &d.host(),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("is in use by another process"),
        "{}",
        stderr(&out)
    );
    assert!(
        !dir.path().join("r2").exists(),
        "the data root is not touched when the socket is taken"
    );
    // The first daemon still works.
    d.ok(&["images"]);
}

#[test]
fn daemon_stops_cleanly_on_sigterm_and_keeps_data() {
    let mut d = Daemon::start();
    let id = d.import_busybox("keep");
    let st = d.stop().unwrap();
    assert!(st.success(), "daemon exit status {st:?}: {}", d.log());
    assert!(!d.socket().exists(), "socket removed on shutdown");
    d.spawn();
    assert_eq!(d.ok(&["inspect", "-f", "{{.Id}}", "keep"]).trim(), id);
    d.assert_check_clean();
}

#[test]
fn system_check_reports_corruption() {
    let d = Daemon::start();
    let id = d.import_busybox("victim");
    d.assert_check_clean();
    // Flip the config blob's content: the digest no longer matches.
    let blob = d.root().join("blobs/sha256").join(&id[7..]);
    let mut data = std::fs::read(&blob).unwrap();
    data[0] ^= 0x20;
    std::fs::write(&blob, data).unwrap();
    let out = d.amber(&["system", "check"]);
    assert!(!out.status.success());
    assert!(
        common::stdout(&out).contains("does not match its digest"),
        "{}",
        common::stdout(&out)
    );
}

#[test]
fn version_and_info_json() {
    let d = Daemon::start();
    let v: Value = serde_json::from_str(&d.ok(&["version", "--format", "json"])).unwrap();
    assert_eq!(v["Server"]["ApiVersion"], "1.45");
    assert_eq!(v["Server"]["MinAPIVersion"], "1.24");
    let info: Value = serde_json::from_str(&d.ok(&["info", "--format", "json"])).unwrap();
    assert_eq!(info["Driver"], "overlay2");
    assert_eq!(info["DockerRootDir"], d.root().to_str().unwrap());
    d.import_busybox("one");
    assert_eq!(d.ok(&["info", "--format", "{{.Images}}"]).trim(), "1");
}

/// Unmounts the read-only mount even when the test fails.
struct Unmount(std::path::PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}

#[test]
fn unwritable_data_root_is_one_line_error() {
    let dir = tempfile::tempdir().unwrap();
    let ro = dir.path().join("ro");
    std::fs::create_dir(&ro).unwrap();
    nix::mount::mount(
        Some("tmpfs"),
        &ro,
        Some("tmpfs"),
        nix::mount::MsFlags::MS_RDONLY,
        None::<&str>,
    )
    .unwrap();
    let _guard = Unmount(ro.clone());
    let sock = format!("unix://{}/d.sock", dir.path().display());
    let out = std::process::Command::new(common::amber_bin())
        .args([
            "daemon",
            "--data-root",
            ro.join("root").to_str().unwrap(),
            "-H",
            &sock,
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    let last = err.trim().lines().last().unwrap_or_default();
    assert!(
        last.contains("failed to create data root") && last.contains("Read-only file system"),
        "{err}"
    );
    assert!(!dir.path().join("d.sock").exists());
}
