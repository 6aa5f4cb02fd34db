//! Archive interop with the real peers (Debian's podman and skopeo,
//! installed by tests/deps.sh): what amber saves, podman loads and skopeo
//! reads; what podman and skopeo write, amber loads — with the same image
//! IDs on both sides.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{stderr, stdout, Daemon};

/// podman on a private root (vfs: no mounts to clean up).
fn podman(root: &Path, args: &[&str]) -> Output {
    Command::new("podman")
        .arg("--root")
        .arg(root.join("storage"))
        .arg("--runroot")
        .arg(root.join("run"))
        .args([
            "--storage-driver",
            "vfs",
            "--cgroup-manager",
            "cgroupfs",
            "--events-backend",
            "none",
        ])
        .args(args)
        .output()
        .expect("podman must be installed (tests/deps.sh installs it)")
}

fn ok(o: Output, what: &str) -> String {
    assert!(o.status.success(), "{what}: {}{}", stdout(&o), stderr(&o));
    stdout(&o)
}

fn skopeo(args: &[&str]) -> Output {
    Command::new("skopeo")
        .args(args)
        .output()
        .expect("skopeo must be installed (tests/deps.sh installs it)")
}

fn setup() -> (Daemon, String) {
    let d = Daemon::start();
    d.import_busybox("bb:1");
    d.ok(&[
        "run",
        "--name",
        "writer",
        "bb:1",
        "sh",
        "-c",
        "echo from-amber > /who; rm /etc/group",
    ]);
    d.ok(&["commit", "writer", "bb:two"]);
    d.ok(&["rm", "writer"]);
    let id = d
        .ok(&["inspect", "-f", "{{.Id}}", "bb:two"])
        .trim()
        .to_string();
    (d, id)
}

#[test]
fn podman_loads_what_amber_saves_and_back() {
    let (d, id) = setup();
    let dir = d.dir.path().to_path_buf();
    let proot = dir.join("podman");
    for (format, compress) in [("docker", "none"), ("docker", "gzip"), ("oci", "zstd")] {
        let f = dir.join(format!("amber-{format}-{compress}.tar"));
        let fs = f.to_str().unwrap();
        d.ok(&[
            "save",
            "--format",
            format,
            "--compress",
            compress,
            "-o",
            fs,
            "bb:two",
        ]);
        let out = ok(podman(&proot, &["load", "-i", fs]), "podman load");
        assert!(out.contains("bb:two"), "{format}/{compress}: {out}");
        let pid = ok(
            podman(
                &proot,
                &[
                    "image",
                    "inspect",
                    "--format",
                    "{{.Id}}",
                    "docker.io/library/bb:two",
                ],
            ),
            "podman inspect",
        );
        assert_eq!(format!("sha256:{}", pid.trim()), id, "{format}/{compress}");
        ok(
            podman(&proot, &["rmi", "-f", "docker.io/library/bb:two"]),
            "podman rmi",
        );
    }
    // podman's own formats, back into a fresh amber.
    let f = dir.join("amber.tar");
    d.ok(&["save", "-o", f.to_str().unwrap(), "bb:two"]);
    ok(
        podman(&proot, &["load", "-i", f.to_str().unwrap()]),
        "podman load",
    );
    let dst = Daemon::start();
    for format in ["docker-archive", "oci-archive"] {
        let p = dir.join(format!("podman-{format}.tar"));
        let ps = p.to_str().unwrap();
        ok(
            podman(
                &proot,
                &[
                    "save",
                    "--format",
                    format,
                    "-o",
                    ps,
                    "docker.io/library/bb:two",
                ],
            ),
            "podman save",
        );
        let out = dst.ok(&["load", "-i", ps]);
        assert!(out.contains("Loaded image: bb:two"), "{format}: {out}");
        assert_eq!(
            dst.ok(&["inspect", "-f", "{{.Id}}", "bb:two"]).trim(),
            id,
            "{format}"
        );
        assert_eq!(
            dst.ok(&["run", "--rm", "bb:two", "cat", "/who"]).trim(),
            "from-amber"
        );
        dst.ok(&["rmi", "bb:two"]);
    }
    dst.assert_check_clean();
    let _ = std::fs::remove_dir_all(&proot);
}

#[test]
fn skopeo_reads_and_writes_what_amber_loads() {
    let (d, id) = setup();
    let dir = d.dir.path().to_path_buf();
    let docker_fmt = dir.join("a.tar");
    let oci_fmt = dir.join("a-oci.tar");
    d.ok(&["save", "-o", docker_fmt.to_str().unwrap(), "bb:two"]);
    d.ok(&[
        "save",
        "--format",
        "oci",
        "--compress",
        "gzip",
        "-o",
        oci_fmt.to_str().unwrap(),
        "bb:two",
    ]);

    let layers = d.ok(&["inspect", "-f", "{{json .RootFS.Layers}}", "bb:two"]);
    let inspected = ok(
        skopeo(&[
            "inspect",
            &format!("docker-archive:{}", docker_fmt.display()),
        ]),
        "skopeo inspect docker-archive",
    );
    let v: serde_json::Value = serde_json::from_str(&inspected).unwrap();
    let want: serde_json::Value = serde_json::from_str(&layers).unwrap();
    assert_eq!(v["Layers"], want, "skopeo sees amber's layers");
    let raw = ok(
        skopeo(&[
            "inspect",
            "--config",
            "--raw",
            &format!("oci-archive:{}", oci_fmt.display()),
        ]),
        "skopeo inspect oci-archive",
    );
    assert_eq!(
        common::sha256_hex(raw.as_bytes()),
        id[7..],
        "config bytes intact"
    );

    // skopeo rewrites amber's archive as an OCI layout (gzip and zstd
    // layers, its own manifest), amber loads it.
    let dst = Daemon::start();
    for (i, comp) in ["gzip", "zstd"].iter().enumerate() {
        let out = dir.join(format!("skopeo-{comp}.tar"));
        let name = format!("sk:{i}");
        ok(
            skopeo(&[
                "copy",
                "-q",
                "--dest-compress-format",
                comp,
                &format!("docker-archive:{}", docker_fmt.display()),
                &format!("oci-archive:{}:{name}", out.display()),
            ]),
            "skopeo copy",
        );
        let loaded = dst.ok(&["load", "-i", out.to_str().unwrap()]);
        assert!(
            loaded.contains(&format!("Loaded image: {name}")),
            "{loaded}"
        );
        assert_eq!(
            dst.ok(&["run", "--rm", &name, "cat", "/who"]).trim(),
            "from-amber"
        );
    }
    // And the OCI archive amber wrote is a valid layout for skopeo.
    let layout = dir.join("layout");
    ok(
        skopeo(&[
            "copy",
            "-q",
            &format!("oci-archive:{}", oci_fmt.display()),
            &format!("oci:{}:copied", layout.display()),
        ]),
        "skopeo copy from amber's OCI archive",
    );
    assert!(layout.join("index.json").is_file());
    dst.assert_check_clean();
}
