//! The API over TCP: mutual TLS (amber and docker CLIs, exec and attach
//! over TLS), bearer tokens, and the refusals — no certificate, a
//! certificate from another CA, no or a wrong token, no authentication on
//! a non-loopback address. Loopback only; ports picked free.

mod common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{amber_bin, stderr, stdout, Daemon};

/// A free loopback port (bound, then released for the daemon).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `amber cluster certs --out DIR h1=127.0.0.1`.
fn certs(dir: &Path) -> PathBuf {
    let out = dir.join("certs");
    let o = Command::new(amber_bin())
        .args(["cluster", "certs", "--out"])
        .arg(&out)
        .arg("h1=127.0.0.1")
        .output()
        .unwrap();
    assert!(o.status.success(), "cluster certs: {}", stderr(&o));
    out
}

/// Run the amber CLI with `args` and extra environment, nothing inherited
/// from the AMBER_* of the test's own environment.
fn amber_env(args: &[&str], env: &[(&str, &Path)], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(amber_bin());
    for v in [
        "AMBER_HOST",
        "AMBER_TLS_VERIFY",
        "AMBER_CERT_PATH",
        "AMBER_TOKEN_FILE",
    ] {
        cmd.env_remove(v);
    }
    cmd.args(args)
        .envs(env.iter().map(|(k, v)| (k, v.as_os_str())))
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    if let Some(input) = stdin {
        let mut si = child.stdin.take().unwrap();
        si.write_all(input.as_bytes()).unwrap();
    }
    child.wait_with_output().unwrap()
}

fn ok(o: Output, what: &str) -> String {
    assert!(
        o.status.success(),
        "{what} failed: {}{}",
        stdout(&o),
        stderr(&o)
    );
    stdout(&o)
}

fn fails(o: Output, what: &str) -> String {
    assert!(!o.status.success(), "{what} should fail: {}", stdout(&o));
    stderr(&o)
}

/// One raw HTTP/1.1 GET over TLS as a client without a certificate (or
/// with the given one): the answer, or the error.
fn tls_get(port: u16, ca: &Path, path: &str) -> Result<String, String> {
    use std::sync::Arc;
    use tokio_rustls::rustls;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let tcp = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    tls.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    match tls.read_to_end(&mut buf) {
        Ok(_) if !buf.is_empty() => Ok(String::from_utf8_lossy(&buf).into_owned()),
        Ok(_) => Err("connection closed without an answer".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// A plain HTTP request on the TCP port: the whole answer.
fn http(port: u16, path: &str, authorization: Option<&str>) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let auth = authorization
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

#[test]
fn mutual_tls_with_amber_and_docker_clis_and_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let certs = certs(dir.path());
    let other = tempfile::tempdir().unwrap();
    let other_certs = self::certs(other.path());
    let port = free_port();
    let host = format!("tcp://127.0.0.1:{port}");
    let s = |p: &str| certs.join(p).display().to_string();
    let d = Daemon::start_with_args(&[
        "-H",
        &host,
        "--tlsverify",
        "--tlscacert",
        &s("h1/ca.pem"),
        "--tlscert",
        &s("h1/cert.pem"),
        "--tlskey",
        &s("h1/key.pem"),
    ]);
    d.import_busybox("busybox");
    let client = certs.join("client");
    // The environment: AMBER_HOST, AMBER_TLS_VERIFY, AMBER_CERT_PATH.
    let env = [
        ("AMBER_HOST", Path::new(&host)),
        ("AMBER_TLS_VERIFY", Path::new("1")),
        ("AMBER_CERT_PATH", client.as_path()),
    ];
    let v = ok(amber_env(&["version"], &env, None), "version over mTLS");
    assert!(v.contains("Server: amber"), "{v}");
    // The flags.
    let flags = |extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = vec![
            "-H".into(),
            host.clone(),
            "--tlsverify".into(),
            "--tlscacert".into(),
            s("client/ca.pem"),
            "--tlscert".into(),
            s("client/cert.pem"),
            "--tlskey".into(),
            s("client/key.pem"),
        ];
        a.extend(extra.iter().map(|x| x.to_string()));
        a
    };
    let run = |extra: &[&str], stdin: Option<&str>| {
        let a = flags(extra);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        amber_env(&a, &[], stdin)
    };
    assert!(ok(run(&["images"], None), "images").contains("busybox"));
    let hi = ok(run(&["run", "--rm", "busybox", "echo", "hi"], None), "run");
    assert_eq!(hi.trim(), "hi");
    let name = format!("rtls-{}", std::process::id());
    ok(
        run(
            &["run", "-d", "--name", &name, "busybox", "sleep", "300"],
            None,
        ),
        "run -d",
    );
    let e = ok(run(&["exec", &name, "echo", "from-exec"], None), "exec");
    assert_eq!(e.trim(), "from-exec");
    // exec -i: the hijacked connection carries stdin over TLS.
    let e = ok(
        run(&["exec", "-i", &name, "sh"], Some("echo from-stdin\n")),
        "exec -i",
    );
    assert_eq!(e.trim(), "from-stdin");

    // The docker CLI with Docker's flags and amber's certificate layout.
    let docker = |args: &[&str]| {
        Command::new("docker")
            .env("DOCKER_CONFIG", dir.path().join("docker-config"))
            .env_remove("DOCKER_HOST")
            .env_remove("DOCKER_TLS_VERIFY")
            .env_remove("DOCKER_CERT_PATH")
            .env_remove("DOCKER_API_VERSION")
            .args(["--tlsverify", "--tlscacert"])
            .arg(certs.join("client/ca.pem"))
            .arg("--tlscert")
            .arg(certs.join("client/cert.pem"))
            .arg("--tlskey")
            .arg(certs.join("client/key.pem"))
            .args(["-H", &host])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("the docker CLI must be installed (.ci/run installs it)")
    };
    let v = ok(docker(&["version"]), "docker version");
    assert!(v.contains("Server: amber"), "{v}");
    assert!(ok(docker(&["ps"]), "docker ps").contains(&name));
    let e = ok(
        docker(&["exec", &name, "echo", "docker-exec"]),
        "docker exec",
    );
    assert_eq!(e.trim(), "docker-exec");

    // `docker run -i`: attach hijacked over TLS, stdin in, output out.
    let mut child = Command::new("docker")
        .env("DOCKER_CONFIG", dir.path().join("docker-config"))
        .env("DOCKER_HOST", &host)
        .env("DOCKER_TLS_VERIFY", "1")
        .env("DOCKER_CERT_PATH", &client)
        .env_remove("DOCKER_API_VERSION")
        .args(["run", "--rm", "-i", "busybox", "cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"through-docker-attach\n")
        .unwrap();
    let out = ok(child.wait_with_output().unwrap(), "docker run -i");
    assert_eq!(out.trim(), "through-docker-attach");

    // Refused: no TLS at all, no client certificate, a certificate from
    // another CA (both ways round).
    let plain = amber_env(&["-H", &host, "version"], &[], None);
    assert!(fails(plain, "plain TCP").contains("TLS"));
    let nocert = tls_get(port, &certs.join("ca.pem"), "/_ping");
    assert!(
        nocert.is_err(),
        "a client without a certificate got {nocert:?}"
    );
    let o = other_certs.display().to_string();
    let foreign = amber_env(
        &[
            "-H",
            &host,
            "--tlscacert",
            &s("client/ca.pem"),
            "--tlscert",
            &format!("{o}/client/cert.pem"),
            "--tlskey",
            &format!("{o}/client/key.pem"),
            "version",
        ],
        &[],
        None,
    );
    let err = fails(foreign, "a certificate from another CA");
    assert!(err.contains("refused this client's certificate"), "{err}");
    let wrong_ca = amber_env(
        &["-H", &host, "version"],
        &[
            ("AMBER_TLS_VERIFY", Path::new("1")),
            ("AMBER_CERT_PATH", &other_certs.join("client")),
        ],
        None,
    );
    let err = fails(wrong_ca, "a daemon from another CA");
    assert!(err.contains("TLS connection"), "{err}");
    let _ = run(&["rm", "-f", &name], None);
}

fn token_file(dir: &Path, name: &str, token: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let f = dir.join(name);
    std::fs::write(&f, format!("{token}\n")).unwrap();
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
    f
}

#[test]
fn bearer_token_mode_and_the_token_never_logged() {
    let dir = tempfile::tempdir().unwrap();
    let token = format!("amber-test-token-{}-Zq8", std::process::id());
    let good = token_file(dir.path(), "token", &token);
    let bad = token_file(dir.path(), "bad", "not-the-right-token-at-all");
    let port = free_port();
    let host = format!("tcp://127.0.0.1:{port}");
    let mut d = Daemon::start_with_args(&[
        "-H",
        &host,
        "--auth-token-file",
        good.to_str().unwrap(),
        "--log-level",
        "trace",
    ]);
    d.import_busybox("busybox");
    let ps = amber_env(
        &["-H", &host, "--token-file", good.to_str().unwrap(), "ps"],
        &[],
        None,
    );
    assert!(ok(ps, "ps with the token").contains("CONTAINER ID"));
    // AMBER_TOKEN_FILE, and the hijacked attach of `run` behind the token.
    let hi = amber_env(
        &["-H", &host, "run", "--rm", "busybox", "echo", "hi"],
        &[("AMBER_TOKEN_FILE", &good)],
        None,
    );
    assert_eq!(ok(hi, "run with the token").trim(), "hi");
    let none = fails(amber_env(&["-H", &host, "ps"], &[], None), "no token");
    assert!(none.contains("bearer token"), "{none}");
    let wrong = amber_env(
        &["-H", &host, "--token-file", bad.to_str().unwrap(), "ps"],
        &[],
        None,
    );
    assert!(fails(wrong, "wrong token").contains("bearer token"));
    // The raw answers: 401 with Docker's JSON message.
    for auth in [None, Some("Bearer nope"), Some("Basic Zm9vOmJhcg==")] {
        let a = http(port, "/_ping", auth);
        assert!(a.starts_with("HTTP/1.1 401"), "{auth:?}: {a}");
        assert!(a.contains("{\"message\":"), "{a}");
    }
    let a = http(port, "/v1.45/version", Some(&format!("Bearer {token}")));
    assert!(a.starts_with("HTTP/1.1 200"), "{a}");
    // The docker CLI sends the token as a configured header.
    let cfg = dir.path().join("docker-config");
    std::fs::create_dir_all(&cfg).unwrap();
    std::fs::write(
        cfg.join("config.json"),
        format!("{{\"HttpHeaders\": {{\"Authorization\": \"Bearer {token}\"}}}}"),
    )
    .unwrap();
    let dv = Command::new("docker")
        .env("DOCKER_CONFIG", &cfg)
        .env_remove("DOCKER_TLS_VERIFY")
        .env_remove("DOCKER_API_VERSION")
        .args(["-H", &host, "version"])
        .output()
        .unwrap();
    assert!(ok(dv, "docker version with the token header").contains("Server: amber"));
    d.stop();
    let log = d.log();
    assert!(
        log.contains("TRACE") || log.contains("DEBUG"),
        "not a verbose log: {log}"
    );
    assert!(!log.contains(&token), "the token is in the daemon's log");
}

#[test]
fn token_file_readable_by_others_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let f = token_file(dir.path(), "token", "0123456789abcdef0123456789");
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, err) = daemon_exits(
        dir.path(),
        &[
            "-H",
            &format!("tcp://127.0.0.1:{}", free_port()),
            "--auth-token-file",
            f.to_str().unwrap(),
        ],
    );
    assert_ne!(code, 0);
    assert!(
        err.contains("other users may read it") && err.contains("chmod 600"),
        "{err}"
    );
}

/// Run `amber daemon ARGS` that must exit at once: (code, stderr).
fn daemon_exits(dir: &Path, args: &[&str]) -> (i32, String) {
    let mut child = Command::new(amber_bin())
        .args(["daemon", "--data-root"])
        .arg(dir.join("root"))
        .args(["--config-file", "/nonexistent/amber-test-daemon.json"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            let mut err = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            return (st.code().unwrap_or(-1), err);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("amber daemon {args:?} did not exit");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A non-loopback address of this machine, if it has one (a UDP "connect"
/// only picks a route; nothing is sent).
fn local_non_loopback_ip() -> Option<String> {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    s.connect("192.0.2.1:9").ok()?;
    let ip = s.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then(|| ip.to_string())
}

#[test]
fn no_authentication_only_on_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let mut addrs = vec!["0.0.0.0".to_string()];
    addrs.extend(local_non_loopback_ip());
    for a in &addrs {
        let host = format!("tcp://{a}:{}", free_port());
        let (code, err) = daemon_exits(dir.path(), &["-H", &host]);
        assert_ne!(code, 0, "{host}");
        assert!(err.contains("without authentication"), "{err}");
        assert!(
            err.contains("--tlsverify") && err.contains("--auth-token-file"),
            "{err}"
        );
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    }
    assert!(
        !dir.path().join("root").exists(),
        "the data root was touched"
    );
    // Loopback without authentication: served, with a warning.
    let port = free_port();
    let host = format!("tcp://127.0.0.1:{port}");
    let d = Daemon::start_with_args(&["-H", &host]);
    let v = ok(amber_env(&["-H", &host, "version"], &[], None), "loopback");
    assert!(v.contains("Server: amber"), "{v}");
    assert!(d.log().contains("without authentication"), "{}", d.log());
}
