//! The daemon's registry client against the reference registry
//! implementation (Debian's `docker-registry`, distribution 2.8, installed
//! by tests/deps.sh) on a free loopback port: push, pull, run, re-push,
//! catalog search, htpasswd auth with login/logout, the docker CLI's
//! pull/push through amber, and a mirror from daemon.json.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{stderr, stdout, Daemon};

/// A `docker-registry serve` on 127.0.0.1 and a free port; killed on drop.
struct DistRegistry {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl DistRegistry {
    fn start(htpasswd: Option<(&str, &str)>) -> DistRegistry {
        let dir = tempfile::Builder::new()
            .prefix("amber-distreg-")
            .tempdir()
            .unwrap();
        let port = free_port();
        let mut cfg = format!(
            "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.path().join("data").display()
        );
        if let Some((user, pass)) = htpasswd {
            let file = dir.path().join("htpasswd");
            let st = Command::new("htpasswd")
                .args(["-Bbc", file.to_str().unwrap(), user, pass])
                .stderr(Stdio::null())
                .status()
                .expect("htpasswd (apache2-utils) must be installed");
            assert!(st.success());
            cfg.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: amber-test\n    path: {}\n",
                file.display()
            ));
        }
        let cfg_path = dir.path().join("config.yml");
        std::fs::write(&cfg_path, cfg).unwrap();
        let child = Command::new("docker-registry")
            .args(["serve", cfg_path.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("log")).unwrap())
            .spawn()
            .expect("docker-registry must be installed (tests/deps.sh installs it)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "docker-registry did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        DistRegistry {
            child,
            port,
            _dir: dir,
        }
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn catalog(&self) -> String {
        let o = Command::new("curl")
            .args(["-s", &format!("http://{}/v2/_catalog", self.host())])
            .output()
            .unwrap();
        stdout(&o)
    }
}

impl Drop for DistRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `amber` with its own credential store.
fn amber_as(d: &Daemon, cfg: &Path, args: &[&str], stdin: Option<&str>) -> std::process::Output {
    let mut c = Command::new(common::amber_bin())
        .arg("-H")
        .arg(d.host())
        .args(args)
        .env("AMBER_CONFIG", cfg)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut i = c.stdin.take().unwrap();
        if let Some(s) = stdin {
            i.write_all(s.as_bytes()).unwrap();
        }
    }
    c.wait_with_output().unwrap()
}

#[test]
fn push_pull_run_and_search() {
    let reg = DistRegistry::start(None);
    let d = Daemon::start();
    d.import_busybox("busybox");
    let name = format!("{}/busybox:latest", reg.host());
    d.ok(&["tag", "busybox", &name]);
    let out = d.ok(&["push", &name]);
    assert!(
        out.contains("Pushed") && out.contains("latest: digest: sha256:"),
        "{out}"
    );
    assert!(reg.catalog().contains("\"busybox\""), "{}", reg.catalog());

    // Re-push of an unchanged image: HEADs and one manifest PUT.
    let t = Instant::now();
    let again = d.ok(&["push", &name]);
    let took = t.elapsed();
    assert!(again.contains("Layer already exists"), "{again}");
    eprintln!("re-push of an unchanged image: {took:?}");

    let id = d.ok(&["inspect", "-f", "{{.Id}}", "busybox"]);
    d.ok(&["rmi", &name, "busybox"]);
    assert!(d.entries("layers").is_empty());
    let pulled = d.ok(&["pull", &name]);
    assert!(
        pulled.contains("Pull complete") && pulled.contains("Downloaded newer image"),
        "{pulled}"
    );
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.Id}}", &name]),
        id,
        "same image ID after the trip"
    );
    assert_eq!(
        d.ok(&["run", "--rm", &name, "echo", "pulled"]).trim(),
        "pulled"
    );
    let again = d.ok(&["pull", &name]);
    assert!(
        again.contains("Already exists") && again.contains("Image is up to date"),
        "{again}"
    );
    d.assert_check_clean();

    // `run` of a missing image pulls it first, as `docker run` does.
    d.ok(&["rmi", &name]);
    let o = d.amber(&["run", "--rm", &name, "echo", "auto-pulled"]);
    assert_eq!(stdout(&o).trim(), "auto-pulled", "{}", stderr(&o));
    assert!(
        stderr(&o).contains("Unable to find image"),
        "{}",
        stderr(&o)
    );

    // Pull by digest.
    let digest = pulled
        .lines()
        .find_map(|l| l.strip_prefix("Digest: "))
        .unwrap()
        .to_string();
    d.ok(&["pull", &format!("{}/busybox@{digest}", reg.host())]);

    // zstd layers (OCI +zstd) push and pull too; a second repository of
    // the same registry gets the layer by a cross-repository mount.
    let zname = format!("{}/zstd/bb:1", reg.host());
    d.ok(&["tag", &name, &zname]);
    let out = d.ok(&["push", "--compress", "zstd", &zname]);
    assert!(out.contains("Pushed"), "{out}");
    let mname = format!("{}/mounted/bb:1", reg.host());
    d.ok(&["tag", &name, &mname]);
    let out = d.ok(&["push", &mname]);
    assert!(out.contains(&"Mounted from busybox".to_string()), "{out}");
    d.ok(&["rmi", &zname, &mname, &name]);
    d.ok(&["pull", &zname]);
    assert_eq!(d.ok(&["inspect", "-f", "{{.Id}}", &zname]), id);
    assert_eq!(
        d.ok(&["run", "--rm", &zname, "echo", "zstd"]).trim(),
        "zstd"
    );

    // Search the registry's catalog.
    let found = d.ok(&["search", &format!("{}/busy", reg.host())]);
    assert!(
        found.contains(&format!("{}/busybox", reg.host())),
        "{found}"
    );
    let none = d.ok(&["search", &format!("{}/nothing-like-it", reg.host())]);
    assert_eq!(none.lines().count(), 1, "only the header: {none}");

    // Unknown things are clear errors.
    let err = d.fails(&["pull", &format!("{}/busybox:nope", reg.host())]);
    assert!(err.contains("not found"), "{err}");
    let err = d.fails(&["push", &format!("{}/never-tagged:1", reg.host())]);
    assert!(err.contains("does not exist locally"), "{err}");
}

#[test]
fn login_is_needed_checked_and_forgotten() {
    let reg = DistRegistry::start(Some(("qa", "s3cret")));
    let d = Daemon::start();
    let cfg = d.dir.path().join("client-config");
    d.import_busybox("busybox");
    let name = format!("{}/secure/bb:1", reg.host());
    d.ok(&["tag", "busybox", &name]);

    let o = amber_as(&d, &cfg, &["push", &name], None);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("authentication required"),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains(&format!("amber login {}", reg.host())));

    let o = amber_as(
        &d,
        &cfg,
        &["login", "-u", "qa", "--password-stdin", &reg.host()],
        Some("wrong\n"),
    );
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("wrong user name or password"),
        "{}",
        stderr(&o)
    );
    assert!(
        !cfg.join("config.json").exists(),
        "nothing stored after a failed login"
    );

    let o = amber_as(
        &d,
        &cfg,
        &["login", "-u", "qa", "--password-stdin", &reg.host()],
        Some("s3cret\n"),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("Login Succeeded"));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(cfg.join("config.json"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    let o = amber_as(&d, &cfg, &["push", &name], None);
    assert!(o.status.success(), "{}", stderr(&o));
    d.ok(&["rmi", &name]);
    let o = amber_as(&d, &cfg, &["pull", &name], None);
    assert!(o.status.success(), "{}", stderr(&o));

    let o = amber_as(&d, &cfg, &["logout", &reg.host()], None);
    assert!(stdout(&o).contains("Removing login credentials"));
    d.ok(&["rmi", &name]);
    let o = amber_as(&d, &cfg, &["pull", &name], None);
    assert!(!o.status.success(), "pull after logout must be refused");
}

#[test]
fn docker_cli_pulls_and_pushes_through_amber() {
    let reg = DistRegistry::start(None);
    let d = Daemon::start();
    d.import_busybox("busybox");
    let name = format!("{}/viadocker:v1", reg.host());
    let o = d.docker(&["tag", "busybox", &name]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = d.docker(&["push", &name]);
    assert!(o.status.success(), "docker push: {}", stderr(&o));
    d.ok(&["rmi", &name]);
    let o = d.docker(&["pull", &name]);
    assert!(o.status.success(), "docker pull: {}", stderr(&o));
    assert!(
        stdout(&o).contains("Downloaded newer image"),
        "{}",
        stdout(&o)
    );
    let o = d.docker(&["run", "--rm", &name, "echo", "via-docker"]);
    assert_eq!(stdout(&o).trim(), "via-docker", "{}", stderr(&o));
}

#[test]
fn a_mirror_from_daemon_json_serves_hub_pulls() {
    let mirror = DistRegistry::start(None);
    let seed = Daemon::start();
    seed.import_busybox("busybox");
    let in_mirror = format!("{}/library/busybox:latest", mirror.host());
    seed.ok(&["tag", "busybox", &in_mirror]);
    seed.ok(&["push", &in_mirror]);
    let id = seed.ok(&["inspect", "-f", "{{.Id}}", "busybox"]);

    let cfg: PathBuf = seed.dir.path().join("daemon.json");
    std::fs::write(
        &cfg,
        format!("{{\"registry-mirrors\": [\"http://{}\"]}}", mirror.host()),
    )
    .unwrap();
    let d = Daemon::start_with_args(&["--config-file", cfg.to_str().unwrap()]);
    let out = d.ok(&["pull", "busybox"]);
    assert!(
        out.contains("Downloaded newer image for busybox:latest"),
        "{out}"
    );
    assert_eq!(d.ok(&["inspect", "-f", "{{.Id}}", "busybox"]), id);
}

/// A loopback TCP proxy that cuts the first connection whose response
/// passes `cut_after` bytes (once), to interrupt a blob download.
fn cutting_proxy(target: u16, cut_after: usize) -> u16 {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let cut_done = Arc::new(AtomicBool::new(false));
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { return };
            let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                return;
            };
            let (mut c_in, mut s_out) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut c_in, &mut s_out);
                let _ = s_out.shutdown(std::net::Shutdown::Write);
            });
            let cut_done = cut_done.clone();
            std::thread::spawn(move || {
                let (mut s_in, mut c_out) = (server, client);
                let mut buf = [0u8; 16384];
                let mut passed = 0usize;
                loop {
                    let n = match s_in.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    if passed + n > cut_after && !cut_done.swap(true, Ordering::SeqCst) {
                        let _ = c_out.write_all(&buf[..cut_after.saturating_sub(passed)]);
                        let _ = c_out.shutdown(std::net::Shutdown::Both);
                        let _ = s_in.shutdown(std::net::Shutdown::Both);
                        return;
                    }
                    passed += n;
                    if c_out.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                let _ = c_out.shutdown(std::net::Shutdown::Both);
            });
        }
    });
    port
}

#[test]
fn an_interrupted_layer_download_resumes() {
    let reg = DistRegistry::start(None);
    let d = Daemon::start();
    d.import_busybox("busybox");
    let name = format!("{}/resume/bb:1", reg.host());
    d.ok(&["tag", "busybox", &name]);
    d.ok(&["push", &name]);
    let id = d.ok(&["inspect", "-f", "{{.Id}}", "busybox"]);
    d.ok(&["rmi", &name, "busybox"]);
    // The layer blob is ~1 MB gzip: cut its download at 300 KB.
    let proxy = cutting_proxy(reg.port, 300_000);
    let via = format!("127.0.0.1:{proxy}/resume/bb:1");
    let out = d.ok(&["pull", &via]);
    assert!(out.contains("Pull complete"), "{out}");
    assert!(
        d.log().contains("layer download cut, resuming"),
        "the download was resumed"
    );
    assert_eq!(d.ok(&["inspect", "-f", "{{.Id}}", &via]), id);
    d.assert_check_clean();
}
