//! The seed's private-registry flow with amber alone — `amber registry
//! serve` on a free loopback port, tag, push, `/v2/_catalog`, rmi, pull,
//! run — then auth (401 and a clear message, login, wrong password), and
//! podman pulling what amber pushed and amber pulling what podman pushed.

mod common;
mod registry_common;

use std::process::{Command, Stdio};

use common::{stderr, stdout, Daemon};
use registry_common::{podman, Registry};

fn curl(url: &str) -> String {
    stdout(&Command::new("curl").args(["-s", url]).output().unwrap())
}

#[test]
fn seed_flow_with_amber_registry_and_podman() {
    let d = Daemon::start();
    let reg = Registry::start(&d.dir.path().join("registry"), &[]);
    d.import_busybox("busybox");
    let name = format!("{}/busybox:latest", reg.host());
    d.ok(&["tag", "busybox", &name]);
    d.ok(&["push", &name]);
    let catalog = curl(&format!("http://{}/v2/_catalog", reg.host()));
    assert!(catalog.contains("\"busybox\""), "{catalog}");
    d.ok(&["rmi", &name, "busybox"]);
    d.ok(&["pull", &name]);
    assert_eq!(
        d.ok(&["run", "--rm", &name, "echo", "from-registry"])
            .trim(),
        "from-registry"
    );

    // podman pulls what amber pushed, and pushes back; amber pulls that.
    let proot = d.dir.path().join("podman");
    std::fs::create_dir_all(&proot).unwrap();
    std::fs::write(proot.join("auth.json"), r#"{"auths":{}}"#).unwrap();
    let o = podman(&proot, &["pull", "--tls-verify=false", &name]);
    assert!(o.status.success(), "podman pull: {}", stderr(&o));
    let by_podman = format!("{}/from-podman:1", reg.host());
    let o = podman(&proot, &["tag", &name, &by_podman]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = podman(&proot, &["push", "--tls-verify=false", &by_podman]);
    assert!(o.status.success(), "podman push: {}", stderr(&o));
    d.ok(&["pull", &by_podman]);
    assert_eq!(
        d.ok(&["run", "--rm", &by_podman, "echo", "podman-pushed"])
            .trim(),
        "podman-pushed"
    );
    d.assert_check_clean();
    let _ = std::fs::remove_dir_all(&proot);
}

#[test]
fn push_needs_login_and_wrong_passwords_are_refused() {
    let d = Daemon::start();
    let dir = d.dir.path().to_path_buf();
    let htpasswd = dir.join("htpasswd");
    let st = Command::new("htpasswd")
        .args(["-Bbc", htpasswd.to_str().unwrap(), "qa", "s3cret"])
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    let reg = Registry::start(
        &dir.join("registry"),
        &["--htpasswd", htpasswd.to_str().unwrap()],
    );
    d.import_busybox("busybox");
    let name = format!("{}/private/bb:1", reg.host());
    d.ok(&["tag", "busybox", &name]);
    let cfg = dir.join("client");
    let amber = |args: &[&str], input: &str| {
        use std::io::Write;
        let mut c = Command::new(common::amber_bin())
            .arg("-H")
            .arg(d.host())
            .args(args)
            .env("AMBER_CONFIG", &cfg)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        c.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        c.wait_with_output().unwrap()
    };
    let o = amber(&["push", &name], "");
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("authentication required"),
        "{}",
        stderr(&o)
    );
    let o = amber(
        &["login", "-u", "qa", "--password-stdin", &reg.host()],
        "nope\n",
    );
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("wrong user name or password"),
        "{}",
        stderr(&o)
    );
    let o = amber(
        &["login", "-u", "qa", "--password-stdin", &reg.host()],
        "s3cret\n",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = amber(&["push", &name], "");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("Pushed"));
}

#[test]
fn https_registry_trusted_through_certs_d() {
    let d0 = tempfile::Builder::new()
        .prefix("amber-tls-")
        .tempdir()
        .unwrap();
    // A CA and a server certificate for 127.0.0.1 signed by it.
    let p = |n: &str| d0.path().join(n).to_str().unwrap().to_string();
    let (ca, ca_key, cert, key, csr, ext) = (
        p("ca.pem"),
        p("ca.key"),
        p("cert.pem"),
        p("key.pem"),
        p("leaf.csr"),
        p("ext.cnf"),
    );
    std::fs::write(&ext, "subjectAltName=IP:127.0.0.1\n").unwrap();
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    for args in [
        vec!["req", "-x509"]
            .into_iter()
            .chain(ec)
            .chain([
                "-days",
                "1",
                "-subj",
                "/CN=amber-test-ca",
                "-keyout",
                &ca_key,
                "-out",
                &ca,
            ])
            .collect::<Vec<_>>(),
        vec!["req"]
            .into_iter()
            .chain(ec)
            .chain(["-subj", "/CN=127.0.0.1", "-keyout", &key, "-out", &csr])
            .collect(),
        vec![
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            &ext,
            "-out",
            &cert,
        ],
    ] {
        let o = Command::new("openssl")
            .args(&args)
            .output()
            .expect("openssl must be installed (tests/deps.sh installs it)");
        assert!(o.status.success(), "openssl {args:?}: {}", stderr(&o));
    }
    let (cert, key) = (
        std::path::PathBuf::from(cert),
        std::path::PathBuf::from(key),
    );
    let reg = Registry::start(
        &d0.path().join("registry"),
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    // Without the CA the registry is refused (HTTPS fails; loopback may fall
    // back to HTTP, which a TLS server does not speak).
    let certs_d = d0.path().join("certs.d");
    let cfg = d0.path().join("daemon.json");
    std::fs::write(
        &cfg,
        format!("{{\"registry-certs-dir\": \"{}\"}}", certs_d.display()),
    )
    .unwrap();
    let d = Daemon::start_with_args(&["--config-file", cfg.to_str().unwrap()]);
    d.import_busybox("busybox");
    let name = format!("{}/tls/bb:1", reg.host());
    d.ok(&["tag", "busybox", &name]);
    let err = d.fails(&["push", &name]);
    assert!(!err.is_empty());
    // With the CA in certs.d/<host:port>/ca.crt, push and pull over HTTPS.
    std::fs::create_dir_all(certs_d.join(reg.host())).unwrap();
    std::fs::copy(&ca, certs_d.join(reg.host()).join("ca.crt")).unwrap();
    d.ok(&["push", &name]);
    d.ok(&["rmi", &name, "busybox"]);
    d.ok(&["pull", &name]);
    assert_eq!(d.ok(&["run", "--rm", &name, "echo", "tls"]).trim(), "tls");
}
