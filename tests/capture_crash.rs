//! kill -9 of the daemon while a capture holds a container frozen: no
//! partial bundle, `system check` clean, the container thawed at restart.
//! Its own test binary because it sets the daemon's hold hook in the
//! process environment (inherited by the daemons it starts).

mod common;

use std::time::{Duration, Instant};

use common::Daemon;

#[test]
fn kill9_mid_capture_leaves_no_bundle_and_no_frozen_container() {
    // Every daemon of this binary holds frozen containers 3 s per capture.
    std::env::set_var("AMBER_CAPTURE_HOLD_MS", "3000");
    let mut d = Daemon::start();
    d.import_busybox("busybox");
    d.ok(&[
        "run", "-d", "--name", "victim", "busybox", "sh", "-c",
        "dd if=/dev/urandom of=/payload bs=1M count=4 2>/dev/null; echo ready; while true; do sleep 0.1; done",
    ]);
    for _ in 0..200 {
        if d.ok(&["logs", "victim"]).contains("ready") {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let blobs_before = d.entries("blobs/sha256").len();
    let mut capture = std::process::Command::new(common::amber_bin())
        .args(["-H", &d.host(), "capture", "victim"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the capture froze the container (its file blobs are then
    // written but not indexed), then kill the daemon.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = d.ok(&["inspect", "-f", "{{.State.Status}}", "victim"]);
        if status.trim() == "paused" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the capture never froze the container"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    while d.entries("blobs/sha256").len() < blobs_before + 4 {
        assert!(Instant::now() < deadline, "the capture wrote no blobs");
        std::thread::sleep(Duration::from_millis(20));
    }
    d.kill9();
    let _ = capture.wait();
    d.spawn();
    let state = d.ok(&["inspect", "-f", "{{.State.Status}}", "victim"]);
    assert_eq!(state.trim(), "running", "{}", d.log());
    assert!(
        d.log().contains("thawed container left frozen"),
        "{}",
        d.log()
    );
    assert!(d.ok(&["bundle", "ls", "-q"]).trim().is_empty());
    assert_eq!(d.entries("blobs/sha256").len(), blobs_before);
    assert!(d.entries("tmp").is_empty());
    d.assert_check_clean();
    d.remove_all_containers();
}
