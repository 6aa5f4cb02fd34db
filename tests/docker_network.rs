//! The real `docker` CLI against `amber daemon` for networking and volumes:
//! `run -p -v --network`, `port`, `inspect --format` of NetworkSettings,
//! `network create/ls/inspect/connect/disconnect/rm/prune`, `volume
//! create/ls/inspect/rm/prune`, and the Docker messages of bad input.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{free_port, stderr, stdout, Daemon};

fn docker_ok(d: &Daemon, args: &[&str]) -> String {
    let out = d.docker(args);
    assert!(
        out.status.success(),
        "docker {args:?} failed ({:?}): {}\n{}",
        out.status.code(),
        stderr(&out),
        d.log()
            .lines()
            .rev()
            .take(20)
            .collect::<Vec<_>>()
            .join("\n")
    );
    stdout(&out)
}

fn http_get(addr: &str, path: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = (|| -> std::io::Result<String> {
            let mut s = TcpStream::connect(addr)?;
            s.set_read_timeout(Some(Duration::from_secs(5)))?;
            write!(s, "GET {path} HTTP/1.0\r\n\r\n")?;
            let mut out = String::new();
            s.read_to_string(&mut out)?;
            Ok(out)
        })();
        match got {
            Ok(b) if !b.is_empty() => return b,
            _ if Instant::now() > deadline => panic!("no answer from {addr}"),
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

fn setup() -> Daemon {
    let d = Daemon::start();
    d.import_busybox("busybox");
    d
}

#[test]
fn docker_run_publish_and_volume() {
    let d = setup();
    let www = d.dir.path().join("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("index.html"), "via docker\n").unwrap();
    let port = free_port();
    docker_ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "web",
            "-p",
            &format!("127.0.0.1:{port}:80"),
            "-v",
            &format!("{}:/www:ro", www.display()),
            "busybox",
            "httpd",
            "-f",
            "-p",
            "80",
            "-h",
            "/www",
        ],
    );
    let body = http_get(&format!("127.0.0.1:{port}"), "/");
    assert!(body.contains("via docker"), "{body}");
    assert_eq!(
        docker_ok(&d, &["port", "web", "80"]).trim(),
        format!("127.0.0.1:{port}")
    );
    let ip = docker_ok(
        &d,
        &[
            "inspect",
            "--format",
            "{{.NetworkSettings.IPAddress}}",
            "web",
        ],
    );
    assert!(ip.trim().parse::<std::net::Ipv4Addr>().is_ok(), "{ip}");
    let mounts = docker_ok(
        &d,
        &[
            "inspect",
            "--format",
            "{{range .Mounts}}{{.Type}} {{.Destination}} {{.RW}}{{end}}",
            "web",
        ],
    );
    assert_eq!(mounts.trim(), "bind /www false");
    let ps = docker_ok(&d, &["ps", "--format", "{{.Ports}}"]);
    assert!(ps.contains(&format!("127.0.0.1:{port}->80/tcp")), "{ps}");

    let out = d.docker(&["run", "--rm", "-p", "notaport", "busybox", "true"]);
    assert_ne!(out.status.code(), Some(0));
    docker_ok(&d, &["rm", "-f", "web"]);
}

#[test]
fn docker_volume_commands() {
    let d = setup();
    assert_eq!(docker_ok(&d, &["volume", "create", "dv"]).trim(), "dv");
    let ls = docker_ok(&d, &["volume", "ls", "--format", "{{.Name}} {{.Driver}}"]);
    assert!(ls.lines().any(|l| l == "dv local"), "{ls}");
    let mp = docker_ok(
        &d,
        &["volume", "inspect", "--format", "{{.Mountpoint}}", "dv"],
    );
    assert!(mp.trim().ends_with("/volumes/dv/_data"), "{mp}");
    docker_ok(
        &d,
        &[
            "run",
            "--rm",
            "-v",
            "dv:/d",
            "busybox",
            "sh",
            "-c",
            "echo 1 > /d/one",
        ],
    );
    assert_eq!(
        docker_ok(
            &d,
            &[
                "run",
                "--rm",
                "--mount",
                "source=dv,target=/d",
                "busybox",
                "cat",
                "/d/one"
            ]
        ),
        "1\n"
    );
    docker_ok(
        &d,
        &["create", "--name", "user", "-v", "dv:/d", "busybox", "true"],
    );
    let out = d.docker(&["volume", "rm", "dv"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("volume is in use"),
        "{}",
        stderr(&out)
    );
    docker_ok(&d, &["rm", "user"]);
    docker_ok(&d, &["volume", "rm", "dv"]);
    let out = d.docker(&["volume", "inspect", "dv"]);
    assert!(!out.status.success());
    docker_ok(&d, &["volume", "create", "tmpvol"]);
    let pruned = docker_ok(&d, &["volume", "prune", "-af"]);
    assert!(pruned.contains("tmpvol"), "{pruned}");
}

#[test]
fn docker_network_commands() {
    let d = setup();
    let id = docker_ok(
        &d,
        &["network", "create", "--subnet", "10.214.9.0/24", "dnet"],
    );
    assert_eq!(id.trim().len(), 64);
    let ls = docker_ok(&d, &["network", "ls", "--format", "{{.Name}} {{.Driver}}"]);
    for l in ["dnet bridge", "bridge bridge", "host host", "none null"] {
        assert!(ls.lines().any(|x| x == l), "{l}: {ls}");
    }
    let out = d.docker(&["network", "create", "--subnet", "10.214.0.0/16", "clash"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("overlaps"), "{}", stderr(&out));

    docker_ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "n1",
            "--network",
            "dnet",
            "--network-alias",
            "alpha",
            "busybox",
            "sleep",
            "600",
        ],
    );
    docker_ok(
        &d,
        &["run", "-d", "--name", "n2", "busybox", "sleep", "600"],
    );
    docker_ok(&d, &["network", "connect", "dnet", "n2"]);
    let o = docker_ok(&d, &["exec", "n2", "ping", "-c", "1", "-W", "2", "alpha"]);
    assert!(o.contains("1 packets received"), "{o}");
    let subnet = docker_ok(
        &d,
        &[
            "network",
            "inspect",
            "--format",
            "{{(index .IPAM.Config 0).Subnet}}",
            "dnet",
        ],
    );
    assert_eq!(subnet.trim(), "10.214.9.0/24");
    let ip = docker_ok(
        &d,
        &[
            "inspect",
            "--format",
            "{{.NetworkSettings.Networks.dnet.IPAddress}}",
            "n1",
        ],
    );
    assert!(ip.starts_with("10.214.9."), "{ip}");
    docker_ok(&d, &["network", "disconnect", "dnet", "n2"]);
    let out = d.docker(&["network", "rm", "dnet"]);
    assert!(!out.status.success(), "removed a network in use");
    docker_ok(&d, &["rm", "-f", "n1", "n2"]);
    docker_ok(&d, &["network", "rm", "dnet"]);
    let out = d.docker(&["run", "--rm", "--network", "dnet", "busybox", "true"]);
    assert!(stderr(&out).contains("not found"), "{}", stderr(&out));
}

#[test]
fn docker_python_sdk_network() {
    let d = setup();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/sdk_network.py");
    let out = std::process::Command::new("python3")
        .arg(script)
        .arg(d.host())
        .arg("busybox")
        .arg(free_port().to_string())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "docker SDK script failed (pip install 'docker>=7,<8'):\n{}{}\n{}",
        stdout(&out),
        stderr(&out),
        d.log()
            .lines()
            .rev()
            .take(30)
            .collect::<Vec<_>>()
            .join("\n")
    );
    d.remove_all_containers();
    let _ = d.amber(&["network", "prune", "-f"]);
}
