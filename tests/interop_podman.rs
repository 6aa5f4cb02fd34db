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

/// A cgroup parent for podman's containers (and their conmon), removed
/// with everything under it when dropped, even after a failed assertion.
struct PodmanCgroups(String);

impl PodmanCgroups {
    fn new() -> Self {
        PodmanCgroups(format!("amber-test-podman-{}", std::process::id()))
    }
}

impl Drop for PodmanCgroups {
    fn drop(&mut self) {
        let mut tops = vec![Path::new("/sys/fs/cgroup").join(&self.0)];
        if let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") {
            tops.extend(rd.flatten().map(|e| e.path().join(&self.0)));
        }
        for top in tops.iter().filter(|t| t.is_dir()) {
            // Deepest first: a cgroup directory goes only when empty.
            let mut dirs: Vec<_> = walkdir::WalkDir::new(top)
                .into_iter()
                .flatten()
                .filter(|e| e.file_type().is_dir())
                .map(|e| e.into_path())
                .collect();
            dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
            for d in dirs {
                let _ = std::fs::remove_dir(d);
            }
        }
    }
}

/// `podman run --rm IMAGE ARGS...` as this machine allows it: runc (crun
/// refuses the hybrid cgroup layout), no network, the ulimits within the
/// hard limits here (see ../shared/PEERS.md).
fn podman_run(root: &Path, cg: &PodmanCgroups, image: &str, args: &[&str]) -> Output {
    let mut all = vec![
        "run",
        "--rm",
        "--runtime",
        "runc",
        "--network",
        "none",
        "--cgroup-parent",
        &cg.0,
        "--ulimit",
        "nofile=20000:20000",
        "--ulimit",
        "nproc=32768:32768",
        image,
    ];
    all.extend_from_slice(args);
    podman(root, &all)
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
    let cg = PodmanCgroups::new();
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
        // And it runs: amber's file, through podman's own container.
        let ran = ok(
            podman_run(&proot, &cg, "docker.io/library/bb:two", &["cat", "/who"]),
            "podman run",
        );
        assert_eq!(ran.trim(), "from-amber", "{format}/{compress}");
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
