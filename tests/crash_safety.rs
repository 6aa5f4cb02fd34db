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
