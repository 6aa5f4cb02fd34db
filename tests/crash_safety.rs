//! Kill -9 of the daemon during an import leaves a consistent store:
//! after a restart `amber system check` is clean and no half-imported
//! image is visible.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::Daemon;

#[test]
fn kill9_mid_import_leaves_store_consistent() {
    let mut d = Daemon::start();
    let tar = std::fs::read(common::busybox_tar()).unwrap();
    let mut client = Command::new(common::amber_bin())
        .args(["-H", &d.host(), "import", "-", "crash:half"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = client.stdin.take().unwrap();
    stdin.write_all(&tar[..tar.len() / 2]).unwrap();
    stdin.flush().unwrap();
    // Let the daemon unpack part of it into tmp/.
    std::thread::sleep(Duration::from_millis(500));
    d.kill9();
    drop(stdin);
    let out = client.wait_with_output().unwrap();
    assert!(!out.status.success(), "the import cannot have succeeded");
    d.spawn();
    d.assert_check_clean();
    assert!(d.ok(&["images", "-q"]).trim().is_empty());
    assert!(
        d.entries("tmp").is_empty(),
        "staging cleaned at start: {:?}",
        d.entries("tmp")
    );
    assert!(d.entries("layers").is_empty());
}

#[test]
fn kill9_at_many_moments_of_import() {
    let mut d = Daemon::start();
    let tar = common::busybox_tar().to_str().unwrap().to_string();
    for (i, delay_ms) in [0u64, 10, 25, 50, 80, 120, 200].iter().enumerate() {
        let name = format!("crash:{i}");
        let mut client = Command::new(common::amber_bin())
            .args(["-H", &d.host(), "import", &tar, &name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(*delay_ms));
        d.kill9();
        let _ = client.wait();
        d.spawn();
        d.assert_check_clean();
        // Either the import finished completely or it left no trace.
        let listed = d.amber(&["inspect", "-f", "{{.Id}}", &name]);
        if listed.status.success() {
            let upper = d.ok(&["inspect", "-f", "{{.GraphDriver.Data.UpperDir}}", &name]);
            assert!(std::path::Path::new(upper.trim())
                .join("bin/busybox")
                .is_file());
        }
        assert!(d.entries("tmp").is_empty());
    }
}

/// A tar with one 48 MiB file of random bytes (`/big`) and a shell.
fn big_image(d: &Daemon) {
    let mut data = vec![0u8; 48 << 20];
    getrandom::getrandom(&mut data).unwrap();
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_700_000_000);
    b.append_data(&mut h, "big", &data[..]).unwrap();
    let path = d.dir.path().join("big.tar");
    std::fs::write(&path, b.into_inner().unwrap()).unwrap();
    d.ok(&["import", path.to_str().unwrap(), "big:1"]);
}

/// The image's layer, once unpacked (a loaded layer is unpacked in the
/// background, again after a restart), holds the whole file.
fn layer_ok(d: &Daemon, name: &str) {
    let upper = d.ok(&["inspect", "-f", "{{.GraphDriver.Data.UpperDir}}", name]);
    let file = std::path::Path::new(upper.trim()).join("big");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !file.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let m = std::fs::metadata(&file).unwrap();
    assert_eq!(m.len(), 48 << 20, "{name} complete");
}

/// `tmp/` empties: a restart may be finishing a loaded layer's unpack
/// there (in the background), nothing else.
fn tmp_settles(d: &Daemon) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !d.entries("tmp").is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(d.entries("tmp").is_empty(), "{:?}", d.entries("tmp"));
}

/// `load` returns before the layer's files exist (deferred unpack): a
/// kill -9 while they are being created, then a restart, finishes the
/// unpack, the store checks clean, and a container runs from the image.
#[test]
fn kill9_during_background_unpack() {
    let mut d = Daemon::start();
    d.import_busybox("busybox");
    d.ok(&[
        "run",
        "--name",
        "mk",
        "busybox",
        "sh",
        "-c",
        "mkdir /d && i=0 && while [ $i -lt 3000 ]; do echo file$i > /d/f$i; i=$((i+1)); done",
    ]);
    d.ok(&["commit", "mk", "many:1"]);
    d.ok(&["rm", "mk"]);
    let arch = d.dir.path().join("many.tar");
    let arch = arch.to_str().unwrap();
    d.ok(&["save", "-o", arch, "many:1"]);
    for delay_ms in [0u64, 2, 10, 40] {
        d.ok(&["rmi", "many:1"]);
        d.ok(&["load", "-i", arch]);
        std::thread::sleep(Duration::from_millis(delay_ms));
        d.kill9();
        d.spawn();
        d.assert_check_clean();
        let out = d.ok(&[
            "run",
            "--rm",
            "many:1",
            "sh",
            "-c",
            "ls /d | wc -l; cat /d/f2999",
        ]);
        assert_eq!(
            out.split_whitespace().collect::<Vec<_>>(),
            ["3000", "file2999"]
        );
        d.assert_check_clean();
        assert!(d.entries("tmp").is_empty(), "{:?}", d.entries("tmp"));
    }
    // The unpacked layer saves to the same bytes.
    let again = d.dir.path().join("again.tar");
    d.ok(&["save", "-o", again.to_str().unwrap(), "many:1"]);
    assert_eq!(std::fs::read(&again).unwrap(), std::fs::read(arch).unwrap());
}

#[test]
fn kill9_during_load_and_save() {
    let mut d = Daemon::start();
    big_image(&d);
    let archive = d.dir.path().join("big-save.tar");
    let arch = archive.to_str().unwrap().to_string();
    d.ok(&["save", "-o", &arch, "big:1"]);
    for delay_ms in [0u64, 30, 80, 150, 300, 600] {
        // Save: the client fails or finishes; never a partial archive at -o.
        let out = d.dir.path().join(format!("partial-{delay_ms}.tar"));
        let mut client = Command::new(common::amber_bin())
            .args([
                "-H",
                &d.host(),
                "save",
                "-o",
                out.to_str().unwrap(),
                "big:1",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        d.kill9();
        let st = client.wait().unwrap();
        if st.success() {
            assert_eq!(
                std::fs::read(&out).unwrap(),
                std::fs::read(&archive).unwrap()
            );
        } else {
            assert!(!out.exists(), "a failed save leaves no archive");
        }
        d.spawn();
        d.assert_check_clean();
        layer_ok(&d, "big:1");

        // Load: after the restart the image is there whole, or not at all.
        d.ok(&["rmi", "big:1"]);
        let mut client = Command::new(common::amber_bin())
            .args(["-H", &d.host(), "load", "-i", &arch])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        d.kill9();
        let _ = client.wait();
        d.spawn();
        d.assert_check_clean();
        tmp_settles(&d);
        if d.amber(&["inspect", "big:1"]).status.success() {
            layer_ok(&d, "big:1");
        } else {
            assert!(d.entries("layers").is_empty(), "no half-loaded layer");
            d.ok(&["load", "-i", &arch]);
        }
    }
}

#[test]
fn kill9_during_commit_keeps_the_container() {
    let mut d = Daemon::start();
    d.import_busybox("busybox");
    for (i, delay_ms) in [0u64, 20, 60, 120, 250, 500].iter().enumerate() {
        let name = format!("c{i}");
        d.ok(&[
            "run",
            "--name",
            &name,
            "busybox",
            "sh",
            "-c",
            "dd if=/dev/urandom of=/big bs=1M count=48 2>/dev/null; md5sum /big > /big.md5",
        ]);
        let mut client = Command::new(common::amber_bin())
            .args(["-H", &d.host(), "commit", &name, &format!("snap:{i}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(*delay_ms));
        d.kill9();
        let _ = client.wait();
        d.spawn();
        d.assert_check_clean();
        // The container still holds its data, whether or not the commit
        // landed; a commit that landed holds it too.
        let dest = d.dir.path().join(format!("out-{i}"));
        std::fs::create_dir_all(&dest).unwrap();
        d.ok(&["cp", &format!("{name}:/big"), dest.to_str().unwrap()]);
        d.ok(&["cp", &format!("{name}:/big.md5"), dest.to_str().unwrap()]);
        let want = std::fs::read_to_string(dest.join("big.md5")).unwrap();
        let got = Command::new("md5sum")
            .arg(dest.join("big"))
            .output()
            .unwrap();
        assert_eq!(
            want.split_whitespace().next(),
            String::from_utf8_lossy(&got.stdout)
                .split_whitespace()
                .next(),
            "container {name} intact after a kill at {delay_ms} ms"
        );
        let snap = format!("snap:{i}");
        if d.amber(&["inspect", &snap]).status.success() {
            d.ok(&["run", "--rm", &snap, "md5sum", "-c", "/big.md5"]);
        }
        let _ = std::fs::remove_dir_all(&dest);
    }
}
