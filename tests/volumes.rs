//! End to end: bind mounts, named and anonymous volumes, `--mount`,
//! `--tmpfs`, `--volumes-from`, `rm -v`, the volume commands and
//! `--privileged` nested binds, against a real `amber daemon` (root).

mod common;

use common::{stderr, Daemon};
use serde_json::Value;

/// Removes every container and volume of the daemon on drop.
struct Cleanup<'a>(&'a Daemon);

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        self.0.remove_all_containers();
        let _ = self.0.amber(&["volume", "prune", "-af"]);
    }
}

fn setup() -> Daemon {
    let d = Daemon::start();
    d.import_busybox("busybox");
    d
}

fn volume_names(d: &Daemon) -> Vec<String> {
    d.ok(&["volume", "ls", "-q"])
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn data_survives_its_container() {
    let d = setup();
    let _c = Cleanup(&d);
    let host = d.dir.path().join("hostdata");
    // Created when missing, as Docker does for -v.
    let bind = format!("{}:/host", host.display());
    d.ok(&[
        "run",
        "--name",
        "writer",
        "-v",
        "store:/data",
        "-v",
        &bind,
        "busybox",
        "sh",
        "-c",
        "echo kept > /data/f; echo onhost > /host/g",
    ]);
    d.ok(&["rm", "writer"]);
    assert_eq!(std::fs::read_to_string(host.join("g")).unwrap(), "onhost\n");
    let o = d.ok(&[
        "run",
        "--rm",
        "-v",
        "store:/data",
        "-v",
        &bind,
        "busybox",
        "cat",
        "/data/f",
        "/host/g",
    ]);
    assert_eq!(o, "kept\nonhost\n");
    let v: Value = serde_json::from_str(&d.ok(&["volume", "inspect", "store"])).unwrap();
    let mp = v[0]["Mountpoint"].as_str().unwrap();
    assert!(mp.starts_with(d.root().to_str().unwrap()), "{mp}");
    assert_eq!(
        std::fs::read_to_string(format!("{mp}/f")).unwrap(),
        "kept\n"
    );
    assert_eq!(v[0]["Driver"], "local");

    // In use: refused with Docker's message; then removed.
    d.ok(&[
        "create",
        "--name",
        "holder",
        "-v",
        "store:/data",
        "busybox",
        "true",
    ]);
    let e = d.fails(&["volume", "rm", "store"]);
    assert!(e.contains("volume is in use"), "{e}");
    d.ok(&["rm", "holder"]);
    d.assert_check_clean();
    d.ok(&["volume", "rm", "store"]);
    assert!(!volume_names(&d).contains(&"store".to_string()));
    let e = d.fails(&["volume", "inspect", "store"]);
    assert!(e.contains("no such volume"), "{e}");
}

#[test]
fn new_volume_gets_the_image_content() {
    let d = setup();
    let _c = Cleanup(&d);
    let o = d.ok(&[
        "run",
        "--rm",
        "-v",
        "etc:/etc",
        "busybox",
        "grep",
        "-c",
        "tester",
        "/etc/passwd",
    ]);
    assert_eq!(o.trim(), "1");
    let mp = d
        .ok(&["volume", "inspect", "--format", "{{.Mountpoint}}", "etc"])
        .trim()
        .to_string();
    assert!(std::fs::read_to_string(format!("{mp}/passwd"))
        .unwrap()
        .contains("tester"));
    // nocopy: an empty volume stays empty.
    let o = d.ok(&[
        "run",
        "--rm",
        "-v",
        "empty:/etc:nocopy",
        "busybox",
        "ls",
        "-A",
        "/etc",
    ]);
    // Only the files the engine binds (hosts, hostname, resolv.conf) appear.
    assert!(!o.contains("passwd"), "{o}");
}

#[test]
fn anonymous_volumes_and_rm_v() {
    let d = setup();
    let _c = Cleanup(&d);
    let tar = common::busybox_tar().to_str().unwrap().to_string();
    d.ok(&["import", "--change", "VOLUME /cache", &tar, "withvol"]);
    d.ok(&[
        "run",
        "--name",
        "a1",
        "withvol",
        "sh",
        "-c",
        "echo x > /cache/x",
    ]);
    let v: Value = serde_json::from_str(&d.ok(&["inspect", "a1"])).unwrap();
    let m = &v[0]["Mounts"][0];
    assert_eq!(
        (m["Type"].as_str(), m["Destination"].as_str()),
        (Some("volume"), Some("/cache"))
    );
    let name = m["Name"].as_str().unwrap().to_string();
    assert_eq!(name.len(), 64);
    assert!(volume_names(&d).contains(&name));
    d.ok(&["rm", "-v", "a1"]);
    assert!(!volume_names(&d).contains(&name));

    // Without -v the anonymous volume stays, and prune takes it.
    d.ok(&["run", "--name", "a2", "withvol", "true"]);
    let name = d
        .ok(&["inspect", "--format", "{{(index .Mounts 0).Name}}", "a2"])
        .trim()
        .to_string();
    d.ok(&["rm", "a2"]);
    d.ok(&["volume", "create", "named"]);
    assert!(volume_names(&d).contains(&name));
    d.ok(&["volume", "prune", "-f"]);
    let left = volume_names(&d);
    assert!(
        !left.contains(&name) && left.contains(&"named".to_string()),
        "{left:?}"
    );

    // --rm takes anonymous volumes along.
    d.ok(&["run", "--rm", "withvol", "true"]);
    assert_eq!(volume_names(&d), ["named"]);
}

#[test]
fn mount_tmpfs_volumes_from_and_read_only() {
    let d = setup();
    let _c = Cleanup(&d);
    let src = d.dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("in"), "host file\n").unwrap();
    let m = format!("type=bind,source={},target=/ro,readonly", src.display());
    let o = d.amber(&[
        "run", "--rm", "--mount", &m, "--mount", "type=tmpfs,target=/t,tmpfs-size=1m",
        "--tmpfs", "/run2:size=2m", "--mount", "type=volume,source=mv,target=/mv",
        "busybox", "sh", "-c",
        "cat /ro/in; touch /ro/no 2>/dev/null && echo writable; grep -E ' /(t|run2) ' /proc/mounts | cut -d' ' -f1-3; touch /mv/ok && echo mv",
    ]);
    let out = common::stdout(&o);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        out.contains("host file") && !out.contains("writable"),
        "{out}"
    );
    assert!(
        out.contains("tmpfs /t tmpfs") && out.contains("tmpfs /run2 tmpfs"),
        "{out}"
    );
    assert!(out.contains("mv"), "{out}");

    d.ok(&[
        "create",
        "--name",
        "vsrc",
        "-v",
        "shared:/shared",
        "busybox",
        "true",
    ]);
    d.ok(&[
        "run",
        "--rm",
        "-v",
        "shared:/s",
        "busybox",
        "sh",
        "-c",
        "echo hi > /s/h",
    ]);
    let o = d.ok(&[
        "run",
        "--rm",
        "--volumes-from",
        "vsrc:ro",
        "busybox",
        "sh",
        "-c",
        "cat /shared/h; echo x > /shared/y 2>/dev/null || echo ro",
    ]);
    assert_eq!(o, "hi\nro\n");
}

#[test]
fn bad_mounts_are_refused_and_create_nothing() {
    let d = setup();
    let _c = Cleanup(&d);
    for (args, msg) in [
        (
            vec!["-v", "rel/dir:/x"],
            "includes invalid characters for a local volume name",
        ),
        (vec!["-v", "/abs:rel"], "mount path must be absolute"),
        (
            vec!["--mount", "type=bind,source=/nonexistent/amber,target=/x"],
            "bind source path does not exist",
        ),
        (
            vec!["-v", "vol1:/x", "-v", "vol2:/x"],
            "Duplicate mount point",
        ),
    ] {
        let mut argv = vec!["create", "--name", "bad"];
        argv.extend(args.iter().copied());
        argv.extend(["busybox", "true"]);
        let o = d.amber(&argv);
        assert_eq!(o.status.code(), Some(125), "{args:?}");
        assert!(stderr(&o).contains(msg), "{args:?}: {}", stderr(&o));
    }
    assert!(d.amber(&["inspect", "bad"]).status.code() != Some(0));
    assert!(volume_names(&d).is_empty(), "{:?}", volume_names(&d));
}

#[test]
fn privileged_nested_bind_mounts() {
    let d = setup();
    let _c = Cleanup(&d);
    let host = d.dir.path().join("nested");
    std::fs::create_dir_all(host.join("sub/deeper")).unwrap();
    std::fs::write(host.join("sub/deeper/f"), "deep\n").unwrap();
    let bind = format!("{}:/h", host.display());
    let script = "mkdir -p /mnt/x && mount --bind /h/sub/deeper /mnt/x && cat /mnt/x/f";
    let o = d.ok(&[
        "run",
        "--rm",
        "--privileged",
        "-v",
        &bind,
        "busybox",
        "sh",
        "-c",
        script,
    ]);
    assert_eq!(o, "deep\n");
    // Without --privileged, mount is refused (no CAP_SYS_ADMIN).
    let o = d.amber(&["run", "--rm", "-v", &bind, "busybox", "sh", "-c", script]);
    assert!(!o.status.success());
    // Nothing of the container's mounts leaks onto the host.
    assert!(amber::runtime::host_mounts_under(&host).is_empty());
}
