//! The real `docker` CLI against `amber daemon`: version negotiation,
//! images, import, tag, inspect, rmi; and the raw API's edges (ping
//! headers, version prefixes, unknown endpoints).

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;

use common::{stderr, stdout, Daemon};

fn docker_ok(d: &Daemon, args: &[&str]) -> String {
    let out = d.docker(args);
    assert!(
        out.status.success(),
        "docker {args:?} failed: {}\n{}",
        stderr(&out),
        d.log()
    );
    stdout(&out)
}

/// One raw HTTP/1.1 exchange on the daemon's socket.
fn raw(d: &Daemon, request: &str) -> String {
    let mut s = UnixStream::connect(d.socket()).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn docker_cli_images_workflow() {
    let d = Daemon::start();
    let v = docker_ok(
        &d,
        &[
            "version",
            "--format",
            "{{.Server.APIVersion}} {{.Server.MinAPIVersion}}",
        ],
    );
    assert_eq!(v.trim(), "1.45 1.24");
    let tar = common::busybox_tar().to_str().unwrap().to_string();
    let id = docker_ok(
        &d,
        &["import", "--change", "CMD [\"sh\"]", &tar, "dk/busybox:1"],
    );
    let id = id.trim();
    assert!(id.starts_with("sha256:"), "{id}");
    let listed = docker_ok(
        &d,
        &["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"],
    );
    assert_eq!(listed.trim(), format!("dk/busybox:1 {}", &id[7..19]));
    docker_ok(&d, &["tag", "dk/busybox:1", "localhost:5000/dk/bb:2"]);
    let tags = docker_ok(
        &d,
        &[
            "image",
            "inspect",
            "--format",
            "{{json .RepoTags}}",
            "dk/busybox:1",
        ],
    );
    assert_eq!(tags.trim(), r#"["dk/busybox:1","localhost:5000/dk/bb:2"]"#);
    let cmd = docker_ok(
        &d,
        &[
            "image",
            "inspect",
            "--format",
            "{{json .Config.Cmd}} {{.Id}}",
            &id[7..19],
        ],
    );
    assert_eq!(cmd.trim(), format!(r#"["sh"] {id}"#));
    // The amber CLI sees what docker made.
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.Id}}", "localhost:5000/dk/bb:2"])
            .trim(),
        id
    );

    let out = docker_ok(&d, &["rmi", "localhost:5000/dk/bb:2"]);
    assert!(out.contains("Untagged: localhost:5000/dk/bb:2"), "{out}");
    let out = docker_ok(&d, &["rmi", "dk/busybox:1"]);
    assert!(out.contains(&format!("Deleted: {id}")), "{out}");
    assert!(docker_ok(&d, &["images", "-q"]).trim().is_empty());

    let out = d.docker(&["image", "inspect", "nothere"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("No such image"), "{}", stderr(&out));
    let out = d.docker(&["info", "--format", "{{.Driver}} {{.Images}}"]);
    assert_eq!(stdout(&out).trim(), "overlay2 0", "{}", stderr(&out));
    d.assert_check_clean();
}

#[test]
fn ping_version_prefixes_and_unknown_endpoints() {
    let d = Daemon::start();
    let head = raw(
        &d,
        "HEAD /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let lower = head.to_ascii_lowercase();
    assert!(lower.contains("api-version: 1.45"), "{head}");
    assert!(lower.contains("ostype: linux"));
    let get = raw(
        &d,
        "GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(get.ends_with("OK"), "{get}");

    let ok = raw(
        &d,
        "GET /v1.24/images/json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    let old = raw(
        &d,
        "GET /v1.12/images/json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(
        old.starts_with("HTTP/1.1 400") && old.contains("is too old"),
        "{old}"
    );
    let new = raw(
        &d,
        "GET /v1.99/images/json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(
        new.starts_with("HTTP/1.1 400") && new.contains("is too new"),
        "{new}"
    );
    for path in ["/v1.45/nothing/here", "/swarm", "/v1.45/images/x/frob"] {
        let r = raw(
            &d,
            &format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
        );
        assert!(r.starts_with("HTTP/1.1 404"), "{path}: {r}");
        assert!(r.contains("{\"message\":"), "{path}: {r}");
    }
    let r = raw(
        &d,
        "PATCH /version HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(r.contains("{\"message\":"), "{r}");
}

#[test]
fn docker_python_sdk_images() {
    let d = Daemon::start();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/sdk_images.py");
    let out = std::process::Command::new("python3")
        .arg(script)
        .arg(d.host())
        .arg(common::busybox_tar())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "docker SDK script failed (pip install 'docker>=7,<8'):\n{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(stdout(&out).contains("sdk ok"));
}
