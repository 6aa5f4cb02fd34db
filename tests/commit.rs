//! `commit`, `history`, `export`: a stopped container's writable layer
//! moves into the layer store without a copy and the container stays as it
//! was; a running one is captured while paused; an interrupted commit is
//! rolled back when the daemon restarts.

mod common;

use std::os::unix::fs::MetadataExt;

use common::Daemon;

fn setup() -> Daemon {
    let d = Daemon::start();
    d.import_busybox("busybox");
    d
}

fn upper_of(d: &Daemon, name: &str) -> std::path::PathBuf {
    let id = d.ok(&["inspect", "-f", "{{.Id}}", name]).trim().to_string();
    d.root().join("containers").join(id).join("upper")
}

#[test]
fn stopped_commit_moves_the_layer_and_keeps_the_container() {
    let d = setup();
    d.ok(&[
        "run",
        "--name",
        "c1",
        "busybox",
        "sh",
        "-c",
        "echo v1 > /data.txt; rm /etc/group; mkdir -p /d/e",
    ]);
    let upper_inode = std::fs::metadata(upper_of(&d, "c1")).unwrap().ino();
    let id = d.ok(&[
        "commit",
        "-m",
        "first",
        "-a",
        "QA <qa@example.com>",
        "-c",
        "ENV MODE=test",
        "c1",
        "snap:1",
    ]);
    let id = id.trim();
    assert!(id.starts_with("sha256:"), "{id}");
    // The layer directory is the container's old upper dir: renamed, not copied.
    let layers: Vec<String> =
        serde_json::from_str(&d.ok(&["inspect", "-f", "{{json .RootFS.Layers}}", "snap:1"]))
            .unwrap();
    assert_eq!(layers.len(), 2);
    let layer_dir = d.root().join("layers").join(&layers[1][7..]).join("diff");
    assert_eq!(
        std::fs::metadata(&layer_dir).unwrap().ino(),
        upper_inode,
        "the upper dir was copied, not moved"
    );
    // The new image has the changes (file, whiteout) and the config change.
    let out = d.ok(&[
        "run",
        "--rm",
        "snap:1",
        "sh",
        "-c",
        "cat /data.txt; test -e /etc/group || echo gone; echo $MODE",
    ]);
    assert_eq!(out, "v1\ngone\ntest\n");
    // The container is unchanged to its user, with an empty writable layer.
    assert!(std::fs::read_dir(upper_of(&d, "c1"))
        .unwrap()
        .next()
        .is_none());
    d.ok(&["start", "c1"]);
    d.ok(&["wait", "c1"]);
    assert_eq!(d.ok(&["inspect", "-f", "{{.Image}}", "c1"]).trim(), id);
    let hist = d.ok(&[
        "history",
        "--format",
        "{{.Comment}}|{{.CreatedBy}}",
        "snap:1",
    ]);
    assert!(
        hist.lines().next().unwrap().starts_with("first|sh -c"),
        "{hist}"
    );
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.Author}}", "snap:1"]).trim(),
        "QA <qa@example.com>"
    );
    d.ok(&["rm", "c1"]);
    d.assert_check_clean();
}

#[test]
fn running_commit_and_export_import_round_trip() {
    let d = setup();
    d.ok(&[
        "run",
        "-d",
        "--name",
        "r1",
        "busybox",
        "sh",
        "-c",
        "echo live > /live.txt; rm /bin/vi; sleep 100",
    ]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while d
        .amber(&["exec", "r1", "test", "-e", "/live.txt"])
        .status
        .code()
        != Some(0)
    {
        assert!(std::time::Instant::now() < deadline);
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    d.ok(&["commit", "r1", "snap:2"]);
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.State.Status}}", "r1"]).trim(),
        "running",
        "thawed after the commit"
    );
    assert_eq!(
        d.ok(&[
            "run",
            "--rm",
            "snap:2",
            "sh",
            "-c",
            "cat /live.txt; test -e /bin/vi || echo novi"
        ]),
        "live\nnovi\n"
    );
    // The running container keeps its own writable layer.
    assert!(upper_of(&d, "r1").join("live.txt").exists());
    // export → import gives the same files.
    let tar = d.dir.path().join("r1.tar");
    d.ok(&["export", "r1", "-o", tar.to_str().unwrap()]);
    d.ok(&["import", tar.to_str().unwrap(), "flat:1"]);
    assert_eq!(
        d.ok(&[
            "run",
            "--rm",
            "flat:1",
            "sh",
            "-c",
            "cat /live.txt; test -e /bin/vi || echo novi"
        ]),
        "live\nnovi\n"
    );
    d.ok(&["rm", "-f", "r1"]);
    d.assert_check_clean();
}

#[test]
fn interrupted_commit_is_rolled_back_at_restart() {
    let mut d = setup();
    d.ok(&[
        "run",
        "--name",
        "c2",
        "busybox",
        "sh",
        "-c",
        "echo precious > /keep.txt",
    ]);
    let upper = upper_of(&d, "c2");
    d.stop();
    // Simulate a crash right after the rename step of a commit: the upper
    // dir sits in layers/ with no row, an intent record says so.
    let fake = "sha256:".to_string() + &"ab".repeat(32);
    let dest = d.root().join("layers").join(&fake[7..]);
    std::fs::create_dir_all(&dest).unwrap();
    std::fs::rename(&upper, dest.join("diff")).unwrap();
    std::fs::create_dir(&upper).unwrap();
    let intent = format!("{{\"diff_id\":\"{fake}\",\"moved\":true}}");
    std::fs::write(upper.parent().unwrap().join("commit.json"), intent).unwrap();
    d.spawn();
    assert_eq!(
        std::fs::read_to_string(upper.join("keep.txt")).unwrap(),
        "precious\n"
    );
    assert!(!dest.exists());
    d.ok(&["start", "c2"]);
    d.ok(&["wait", "c2"]);
    d.ok(&["rm", "c2"]);
    d.assert_check_clean();
}

#[test]
fn image_prune_removes_only_unused_images() {
    let d = setup();
    d.import_busybox("keep");
    let dangling = d.import_busybox("gone");
    // `rmi` of the last tag removes the image outright; a dangling image
    // comes from moving a tag to another image.
    assert!(d
        .ok(&["rmi", "gone"])
        .contains(&format!("Deleted: {dangling}")));
    let first = d.import_busybox("moving:1");
    d.import_busybox("moving:1");
    d.ok(&["run", "--name", "user", "busybox", "true"]);
    let out = d.ok(&["image", "prune", "-f"]);
    assert!(out.contains(&format!("deleted: {first}")), "{out}");
    assert!(!out.contains(&dangling));
    let left = d.ok(&["images", "-q"]).lines().count();
    assert_eq!(left, 3, "keep, busybox (used) and moving:1 remain");
    let out = d.ok(&["image", "prune", "-a", "-f"]);
    assert!(out.contains("untagged: keep:latest"), "{out}");
    assert_eq!(
        d.ok(&["images", "--format", "{{.Repository}}"]).trim(),
        "busybox",
        "the image a container uses stays"
    );
    d.ok(&["rm", "user"]);
    d.assert_check_clean();
}

/// The digest computed in the background after a container stops is used
/// by commit only while the layer is unchanged: a `cp` into the stopped
/// container afterwards must not reuse it (save → load re-verifies every
/// digest, so a stale one would be refused there).
#[test]
fn precomputed_layer_digest_is_never_stale() {
    let d = setup();
    d.ok(&[
        "run",
        "--name",
        "pre",
        "busybox",
        "sh",
        "-c",
        "dd if=/dev/zero of=/blob bs=1M count=8 2>/dev/null; echo v1 > /v",
    ]);
    let id = d
        .ok(&["inspect", "-f", "{{.Id}}", "pre"])
        .trim()
        .to_string();
    let cache = d
        .root()
        .join("containers")
        .join(&id)
        .join("layer-digest.json");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !cache.is_file() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(cache.is_file(), "the digest was computed after the exit");
    let src = d.dir.path().join("v");
    std::fs::write(&src, "v2\n").unwrap();
    d.ok(&["cp", src.to_str().unwrap(), "pre:/v"]);
    d.ok(&["commit", "pre", "pre:1"]);
    let out = d.dir.path().join("pre.tar");
    d.ok(&["save", "-o", out.to_str().unwrap(), "pre:1"]);
    let other = Daemon::start();
    other.ok(&["load", "-i", out.to_str().unwrap()]);
    assert_eq!(
        other.ok(&["run", "--rm", "pre:1", "cat", "/v"]).trim(),
        "v2"
    );
    d.assert_check_clean();
}
