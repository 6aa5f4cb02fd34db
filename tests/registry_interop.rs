//! `amber registry serve` with real clients (Debian's skopeo and podman,
//! installed by tests/deps.sh): copy in and out of OCI layouts, inspect,
//! htpasswd and token auth, HTTPS, podman push/pull.

mod registry_common;

use std::path::Path;
use std::process::{Command, Output};

use registry_common::{digest, podman, Registry, TestImage};

fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("amber-registry-interop-")
        .tempdir()
        .unwrap()
}

/// skopeo with no shared auth file or policy surprises.
fn skopeo(dir: &Path, args: &[&str]) -> Output {
    Command::new("skopeo")
        .env("REGISTRY_AUTH_FILE", dir.join("auth.json"))
        .args(["--insecure-policy"])
        .args(args)
        .output()
        .expect("skopeo must be installed (tests/deps.sh installs it)")
}

#[track_caller]
fn ok(o: Output, what: &str) -> String {
    assert!(
        o.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn layout(dir: &Path, img: &TestImage, tag: &str) -> String {
    let l = dir.join(format!("layout-{tag}"));
    img.write_layout(&l, tag);
    format!("oci:{}:{tag}", l.display())
}

#[test]
fn skopeo_copy_in_inspect_and_copy_out() {
    let dir = tempdir();
    let r = Registry::start(&dir.path().join("data"), &[]);
    let img = TestImage::new("from skopeo");
    let src = layout(dir.path(), &img, "v1");
    let dest = format!("docker://{}/skopeo/img:v1", r.host());
    ok(
        skopeo(
            dir.path(),
            &["copy", "--dest-tls-verify=false", &src, &dest],
        ),
        "copy in",
    );
    // Byte-exact: skopeo kept the OCI manifest as is.
    let get = r.req("GET", "/v2/skopeo/img/manifests/v1", &[], b"");
    get.expect(200);
    assert_eq!(get.body, img.manifest);

    let inspect = ok(
        skopeo(dir.path(), &["inspect", "--tls-verify=false", &dest]),
        "inspect",
    );
    let v: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    assert_eq!(v["Digest"], digest(&img.manifest));
    assert_eq!(v["RepoTags"], serde_json::json!(["v1"]));
    assert_eq!(v["Layers"], serde_json::json!([digest(&img.layer)]));

    let out = dir.path().join("out");
    let out_ref = format!("oci:{}:back", out.display());
    ok(
        skopeo(
            dir.path(),
            &["copy", "--src-tls-verify=false", &dest, &out_ref],
        ),
        "copy out",
    );
    let blob = |b: &[u8]| out.join("blobs/sha256").join(&digest(b)[7..]);
    assert_eq!(std::fs::read(blob(&img.layer)).unwrap(), img.layer);
    assert_eq!(std::fs::read(blob(&img.manifest)).unwrap(), img.manifest);

    // Docker schema 2 conversion on the way in, and a cross-repository
    // copy inside the registry (skopeo mounts or re-pushes).
    let dest2 = format!("docker://{}/other/img:v2s2", r.host());
    ok(
        skopeo(
            dir.path(),
            &[
                "copy",
                "--dest-tls-verify=false",
                "--format",
                "v2s2",
                &src,
                &dest2,
            ],
        ),
        "copy v2s2",
    );
    let get = r.req("GET", "/v2/other/img/manifests/v2s2", &[], b"");
    assert_eq!(
        get.header("Content-Type"),
        Some("application/vnd.docker.distribution.manifest.v2+json")
    );
    let dest3 = format!("docker://{}/third/img:copy", r.host());
    ok(
        skopeo(
            dir.path(),
            &[
                "copy",
                "--src-tls-verify=false",
                "--dest-tls-verify=false",
                &dest,
                &dest3,
            ],
        ),
        "registry to registry",
    );
    let tags = ok(
        skopeo(
            dir.path(),
            &[
                "list-tags",
                "--tls-verify=false",
                &format!("docker://{}/skopeo/img", r.host()),
            ],
        ),
        "list-tags",
    );
    assert!(tags.contains("\"v1\""), "{tags}");
}

#[test]
fn skopeo_with_htpasswd_credentials() {
    let dir = tempdir();
    let htpasswd = dir.path().join("htpasswd");
    std::fs::write(
        &htpasswd,
        format!("alice:{}\n", bcrypt::hash("s3cret", 5).unwrap()),
    )
    .unwrap();
    let r = Registry::start(
        &dir.path().join("data"),
        &["--htpasswd", htpasswd.to_str().unwrap()],
    );
    let img = TestImage::new("auth");
    let src = layout(dir.path(), &img, "v1");
    let dest = format!("docker://{}/auth/img:v1", r.host());
    let denied = skopeo(
        dir.path(),
        &["copy", "--dest-tls-verify=false", &src, &dest],
    );
    assert!(!denied.status.success());
    let err = String::from_utf8_lossy(&denied.stderr).to_lowercase();
    assert!(
        err.contains("unauthorized") || err.contains("authentication required"),
        "{err}"
    );
    let wrong = skopeo(
        dir.path(),
        &[
            "copy",
            "--dest-tls-verify=false",
            "--dest-creds",
            "alice:nope",
            &src,
            &dest,
        ],
    );
    assert!(!wrong.status.success());
    ok(
        skopeo(
            dir.path(),
            &[
                "copy",
                "--dest-tls-verify=false",
                "--dest-creds",
                "alice:s3cret",
                &src,
                &dest,
            ],
        ),
        "copy with credentials",
    );
    let inspect = ok(
        skopeo(
            dir.path(),
            &[
                "inspect",
                "--tls-verify=false",
                "--creds",
                "alice:s3cret",
                &dest,
            ],
        ),
        "inspect with credentials",
    );
    assert!(inspect.contains(&digest(&img.manifest)));
}

#[test]
fn skopeo_with_token_file_uses_the_token_flow() {
    let dir = tempdir();
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, "t0ken-abc\n").unwrap();
    let r = Registry::start(
        &dir.path().join("data"),
        &["--token-file", tokens.to_str().unwrap()],
    );
    let img = TestImage::new("token");
    let src = layout(dir.path(), &img, "v1");
    let dest = format!("docker://{}/tok/img:v1", r.host());
    assert!(!skopeo(
        dir.path(),
        &["copy", "--dest-tls-verify=false", &src, &dest]
    )
    .status
    .success());
    ok(
        skopeo(
            dir.path(),
            &[
                "copy",
                "--dest-tls-verify=false",
                "--dest-creds",
                "ci:t0ken-abc",
                &src,
                &dest,
            ],
        ),
        "copy with a token",
    );
    r.req(
        "GET",
        "/v2/tok/img/manifests/v1",
        &[("Authorization", "Bearer t0ken-abc")],
        b"",
    )
    .expect(200);
}

#[test]
fn https_with_a_self_signed_certificate() {
    let dir = tempdir();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let gen = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
        ])
        .args([
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl must be installed (tests/deps.sh installs it)");
    ok(gen, "openssl req");
    let r = Registry::start(
        &dir.path().join("data"),
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    let curl = Command::new("curl")
        .args(["-sS", "--fail", "--cacert"])
        .arg(&cert)
        .arg(format!("https://{}/v2/", r.host()))
        .output()
        .unwrap();
    assert_eq!(ok(curl, "curl over https"), "{}");
    let img = TestImage::new("tls");
    let src = layout(dir.path(), &img, "v1");
    let dest = format!("docker://{}/tls/img:v1", r.host());
    ok(
        skopeo(
            dir.path(),
            &["copy", "--dest-tls-verify=false", &src, &dest],
        ),
        "copy over https",
    );
    let certs = dir.path().join("certs.d");
    std::fs::create_dir_all(&certs).unwrap();
    std::fs::copy(&cert, certs.join("ca.crt")).unwrap();
    let inspect = ok(
        skopeo(
            dir.path(),
            &["inspect", "--cert-dir", certs.to_str().unwrap(), &dest],
        ),
        "inspect verifying the certificate",
    );
    assert!(inspect.contains(&digest(&img.manifest)));
    // Plain HTTP to the TLS port is refused.
    let plain = Command::new("curl")
        .args(["-sS", "--fail", "--max-time", "5"])
        .arg(format!("http://{}/v2/", r.host()))
        .output()
        .unwrap();
    assert!(!plain.status.success());
}

/// podman on a private root (vfs: no mounts to clean up).

#[test]
fn podman_push_and_pull() {
    let dir = tempdir();
    let r = Registry::start(&dir.path().join("data"), &[]);
    let proot = dir.path().join("podman");
    std::fs::create_dir_all(&proot).unwrap();
    std::fs::write(proot.join("auth.json"), r#"{"auths":{}}"#).unwrap();
    let img = TestImage::new("from podman");
    let src = layout(dir.path(), &img, "v1");
    // What skopeo pushed, podman pulls.
    let skopeos = format!("{}/sk/img:v1", r.host());
    ok(
        skopeo(
            dir.path(),
            &[
                "copy",
                "--dest-tls-verify=false",
                "--format",
                "v2s2",
                &src,
                &format!("docker://{skopeos}"),
            ],
        ),
        "skopeo copy",
    );
    ok(
        podman(&proot, &["pull", "--tls-verify=false", &skopeos]),
        "podman pull skopeo's",
    );
    let id = ok(
        podman(
            &proot,
            &["image", "inspect", "--format", "{{.Id}}", &skopeos],
        ),
        "inspect",
    );
    let id = id.trim().to_string();
    // podman pushes it under another name, twice (the second finds every blob there).
    let name = format!("{}/pod/img:v1", r.host());
    ok(
        podman(&proot, &["push", "--tls-verify=false", &id, &name]),
        "podman push",
    );
    r.req("GET", "/v2/pod/img/manifests/v1", &[], b"")
        .expect(200);
    ok(
        podman(&proot, &["push", "--tls-verify=false", &id, &name]),
        "podman re-push",
    );
    ok(podman(&proot, &["rmi", "-a", "-f"]), "rmi");
    ok(
        podman(&proot, &["pull", "--tls-verify=false", &name]),
        "podman pull",
    );
    let got = ok(
        podman(&proot, &["image", "inspect", "--format", "{{.Id}}", &name]),
        "inspect",
    );
    assert_eq!(got.trim(), id);
    assert_eq!(format!("sha256:{id}"), digest(&img.config));
}

#[test]
fn podman_login_push_and_search_with_htpasswd() {
    let dir = tempdir();
    let htpasswd = dir.path().join("htpasswd");
    std::fs::write(
        &htpasswd,
        format!("alice:{}\n", bcrypt::hash("s3cret", 5).unwrap()),
    )
    .unwrap();
    let r = Registry::start(
        &dir.path().join("data"),
        &["--htpasswd", htpasswd.to_str().unwrap()],
    );
    let proot = dir.path().join("podman");
    std::fs::create_dir_all(&proot).unwrap();
    std::fs::write(proot.join("auth.json"), r#"{"auths":{}}"#).unwrap();
    let img = TestImage::new("login");
    let src = layout(dir.path(), &img, "v1");
    let seeded = format!("{}/seed/img:v1", r.host());
    ok(
        skopeo(
            dir.path(),
            &[
                "copy",
                "--dest-tls-verify=false",
                "--dest-creds",
                "alice:s3cret",
                &src,
                &format!("docker://{seeded}"),
            ],
        ),
        "seed",
    );
    let name = format!("{}/team/app:v1", r.host());
    // Without login, podman can neither pull nor push.
    assert!(!podman(&proot, &["pull", "--tls-verify=false", &seeded])
        .status
        .success());
    let wrong = podman(
        &proot,
        &[
            "login",
            "--tls-verify=false",
            "-u",
            "alice",
            "-p",
            "nope",
            &r.host(),
        ],
    );
    assert!(!wrong.status.success());
    ok(
        podman(
            &proot,
            &[
                "login",
                "--tls-verify=false",
                "-u",
                "alice",
                "-p",
                "s3cret",
                &r.host(),
            ],
        ),
        "login",
    );
    ok(
        podman(&proot, &["pull", "--tls-verify=false", &seeded]),
        "pull after login",
    );
    ok(
        podman(&proot, &["push", "--tls-verify=false", &seeded, &name]),
        "push after login",
    );
    let found = ok(
        podman(
            &proot,
            &[
                "search",
                "--tls-verify=false",
                &format!("{}/team", r.host()),
            ],
        ),
        "search",
    );
    assert!(found.contains("team/app"), "{found}");
    ok(podman(&proot, &["logout", &r.host()]), "logout");
    r.req("GET", "/v2/team/app/manifests/v1", &[], b"")
        .expect(401);
}
