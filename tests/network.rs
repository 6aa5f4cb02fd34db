//! End to end: container networking against a real `amber daemon` (root):
//! the default bridge, published ports, `--network none|host|container:`,
//! user networks with name resolution, daemon restart, and that nothing is
//! left behind. Each daemon has its own bridge name; traffic goes only to
//! loopback and to addresses of containers these tests created.

mod common;

use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{free_port, http_get, stderr, stdout, Daemon};
use serde_json::Value;

/// Removes every container (and user network) of the daemon on drop.
struct Cleanup<'a>(&'a Daemon);

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        self.0.remove_all_containers();
        let _ = self.0.amber(&["network", "prune", "-f"]);
        let _ = self.0.amber(&["volume", "prune", "-af"]);
    }
}

fn setup() -> Daemon {
    let d = Daemon::start();
    d.import_busybox("busybox");
    d
}

fn inspect(d: &Daemon, name: &str) -> Value {
    let out = d.ok(&["inspect", name]);
    let v: Value = serde_json::from_str(&out).unwrap();
    v[0].clone()
}

/// Host-side veths enslaved to a bridge.
fn veths_on(bridge: &str) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/sys/class/net").unwrap().flatten() {
        let master = std::fs::read_link(e.path().join("master")).ok();
        if master.is_some_and(|m| m.file_name().unwrap() == bridge) {
            out.push(e.file_name().to_string_lossy().into_owned());
        }
    }
    out
}

#[test]
fn web_server_on_a_published_port() {
    let d = setup();
    let _c = Cleanup(&d);
    let www = d.dir.path().join("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("index.html"), "hello from the host\n").unwrap();
    let port = free_port();
    let publish = format!("{port}:80");
    let vol = format!("{}:/www", www.display());
    d.ok(&[
        "run", "-d", "--name", "web", "-p", &publish, "-v", &vol, "busybox", "httpd", "-f", "-p",
        "80", "-h", "/www",
    ]);
    let body = http_get(&format!("127.0.0.1:{port}"));
    assert!(body.contains("hello from the host"), "{body}");
    std::fs::write(www.join("index.html"), "changed\n").unwrap();
    let body = http_get(&format!("127.0.0.1:{port}"));
    assert!(body.contains("changed"), "{body}");

    let ip = d
        .ok(&[
            "inspect",
            "--format",
            "{{.NetworkSettings.IPAddress}}",
            "web",
        ])
        .trim()
        .to_string();
    assert!(ip.parse::<std::net::Ipv4Addr>().is_ok(), "{ip:?}");
    let body = http_get(&format!("{ip}:80"));
    assert!(body.contains("changed"), "{body}");

    let v = inspect(&d, "web");
    let ns = &v["NetworkSettings"];
    assert_eq!(ns["Ports"]["80/tcp"][0]["HostPort"], port.to_string());
    assert_eq!(ns["Networks"]["bridge"]["IPAddress"], ip);
    let gw = ns["Gateway"].as_str().unwrap();
    assert!(gw.ends_with(".1"), "{gw}");
    let mac = ns["MacAddress"].as_str().unwrap();
    assert!(mac.starts_with("02:42:"), "{mac}");
    assert_eq!(
        d.ok(&["port", "web"]).trim(),
        format!("80/tcp -> 0.0.0.0:{port}")
    );

    // Inside: eth0 with the address, a default route, hosts and resolv.conf.
    let inside = d.ok(&[
        "exec",
        "web",
        "sh",
        "-c",
        "ip -4 addr show eth0; ip route; cat /etc/hosts",
    ]);
    assert!(inside.contains(&format!("inet {ip}/")), "{inside}");
    assert!(inside.contains(&format!("default via {gw}")), "{inside}");
    assert!(inside.contains("127.0.0.1\tlocalhost"), "{inside}");

    // The host port is taken now: a clear error at start, nothing left running.
    let o = d.amber(&[
        "run", "-d", "--name", "web2", "-p", &publish, "busybox", "sleep", "60",
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("port is already allocated"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        d.ok(&["inspect", "--format", "{{.State.Status}}", "web2"])
            .trim(),
        "created"
    );
    d.ok(&["rm", "-f", "web", "web2"]);
    assert!(veths_on(&d.bridge).is_empty());
    assert!(TcpListener::bind(format!("0.0.0.0:{port}")).is_ok());
}

#[test]
fn publish_forms_and_publish_all() {
    let d = setup();
    let _c = Cleanup(&d);
    let tar = common::busybox_tar().to_str().unwrap().to_string();
    d.ok(&["import", "--change", "EXPOSE 80 81", &tar, "exposing"]);
    let (p1, p2) = (free_port(), free_port());
    d.ok(&[
        "run",
        "-d",
        "--name",
        "pa",
        "-P",
        "-p",
        &format!("127.0.0.1:{p1}:80"),
        "-p",
        &format!("{p2}:90/udp"),
        "exposing",
        "sh",
        "-c",
        "httpd -p 80 -h /; httpd -p 81 -h /; sleep 600",
    ]);
    let v = inspect(&d, "pa");
    let ports = &v["NetworkSettings"]["Ports"];
    assert_eq!(ports["80/tcp"][0]["HostIp"], "127.0.0.1");
    assert_eq!(ports["80/tcp"][0]["HostPort"], p1.to_string());
    assert_eq!(ports["90/udp"][0]["HostPort"], p2.to_string());
    let any: u16 = ports["81/tcp"][0]["HostPort"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(any > 0);
    // httpd answers (404 for a directory without index is still an answer).
    assert!(http_get(&format!("127.0.0.1:{any}")).starts_with("HTTP/1."));
    assert!(http_get(&format!("127.0.0.1:{p1}")).starts_with("HTTP/1."));
    assert_eq!(
        d.ok(&["port", "pa", "80"]).trim(),
        format!("127.0.0.1:{p1}")
    );

    for bad in ["abc", "70000:80", "1.2.3:80:80", "80/foo"] {
        let o = d.amber(&["run", "--name", "bad", "-p", bad, "busybox", "true"]);
        assert_eq!(o.status.code(), Some(125), "{bad}");
        assert!(stderr(&o).contains("invalid"), "{bad}: {}", stderr(&o));
    }
    assert!(d.amber(&["inspect", "bad"]).status.code() != Some(0));
}

#[test]
fn restart_keeps_address_and_ports_and_containers_reach_published_ports() {
    let d = setup();
    let _c = Cleanup(&d);
    let port = free_port();
    d.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "-p",
        &format!("{port}:80"),
        "busybox",
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/etc",
    ]);
    let ip = |d: &Daemon| {
        d.ok(&[
            "inspect",
            "--format",
            "{{.NetworkSettings.IPAddress}}",
            "web",
        ])
        .trim()
        .to_string()
    };
    let before = ip(&d);
    d.ok(&["restart", "-t", "1", "web"]);
    assert_eq!(ip(&d), before);
    assert!(http_get(&format!("127.0.0.1:{port}")).starts_with("HTTP/1."));
    assert_eq!(veths_on(&d.bridge).len(), 1);
    // Another container reaches the published port through its gateway.
    let gw = d
        .ok(&["inspect", "--format", "{{.NetworkSettings.Gateway}}", "web"])
        .trim()
        .to_string();
    let o = d.ok(&[
        "run",
        "--rm",
        "busybox",
        "wget",
        "-q",
        "-O-",
        &format!("http://{gw}:{port}/hostname"),
    ]);
    assert!(!o.trim().is_empty());
    // Stopped: no address shown, no port bound, no veth; the lease is kept.
    d.ok(&["stop", "-t", "1", "web"]);
    assert_eq!(ip(&d), "");
    assert!(TcpListener::bind(format!("0.0.0.0:{port}")).is_ok());
    assert!(veths_on(&d.bridge).is_empty());
    d.ok(&["start", "web"]);
    assert_eq!(ip(&d), before);

    // A bad binding sent through the API is refused at create.
    let o = d.docker(&[
        "create",
        "--name",
        "badport",
        "-p",
        "1.2.3.4.5:80:80",
        "busybox",
    ]);
    assert!(!o.status.success());
    assert!(d.amber(&["inspect", "badport"]).status.code() != Some(0));
}

#[test]
fn none_host_and_container_modes() {
    let d = setup();
    let _c = Cleanup(&d);
    let o = d.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "ls",
        "/sys/class/net",
    ]);
    assert_eq!(o.split_whitespace().collect::<Vec<_>>(), ["lo"]);

    let o = d.ok(&[
        "run",
        "--rm",
        "--network",
        "host",
        "busybox",
        "ls",
        "/sys/class/net",
    ]);
    assert!(o.split_whitespace().any(|l| l == d.bridge), "{o}");

    d.ok(&[
        "run", "-d", "--name", "srv", "busybox", "httpd", "-f", "-p", "8099", "-h", "/etc",
    ]);
    // Shares srv's namespace: its localhost is srv's.
    let o = d.ok(&[
        "run", "--rm", "--network", "container:srv", "busybox", "sh", "-c",
        "for i in 1 2 3 4 5 6 7 8 9 10; do wget -q -O- http://127.0.0.1:8099/passwd >/dev/null 2>&1 && echo ok && exit; sleep 0.3; done; echo no",
    ]);
    assert_eq!(o.trim(), "ok");

    // --add-host and --dns, in every mode.
    for mode in ["bridge", "none", "host"] {
        let o = d.ok(&[
            "run",
            "--rm",
            "--network",
            mode,
            "--add-host",
            "db.internal:10.9.8.7",
            "--add-host",
            "gw:host-gateway",
            "--dns",
            "10.9.8.53",
            "--dns-search",
            "corp.test",
            "busybox",
            "sh",
            "-c",
            "cat /etc/hosts /etc/resolv.conf",
        ]);
        assert!(o.contains("10.9.8.7\tdb.internal"), "{mode}: {o}");
        assert!(o.contains("\tgw\n"), "{mode}: {o}");
        assert!(
            o.contains("nameserver 10.9.8.53") && o.contains("search corp.test"),
            "{mode}: {o}"
        );
    }
    let e = d.fails(&["run", "--add-host", "nocolon", "busybox", "true"]);
    assert!(e.contains("bad format for add-host"), "{e}");

    let e = d.fails(&["run", "--network", "nosuchnet", "busybox", "true"]);
    assert!(e.contains("network nosuchnet not found"), "{e}");
}

#[test]
fn user_network_name_resolution() {
    let d = setup();
    let _c = Cleanup(&d);
    let id = d.ok(&["network", "create", "--subnet", "10.213.7.0/24", "backend"]);
    assert_eq!(id.trim().len(), 64);
    let e = d.fails(&["network", "create", "--subnet", "10.213.0.0/16", "other"]);
    assert!(e.contains("overlaps"), "{e}");
    d.ok(&[
        "run",
        "-d",
        "--name",
        "db",
        "--network",
        "backend",
        "--network-alias",
        "store",
        "busybox",
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/",
    ]);
    let o = d.ok(&[
        "run", "--rm", "--network", "backend", "busybox", "sh", "-c",
        "cat /etc/hosts; for n in db store; do wget -q -O /dev/null http://$n/ 2>&1; echo \"$n $?\"; done",
    ]);
    assert!(o.contains("10.213.7."), "{o}");
    assert!(o.contains("db 0") || o.contains("db 1"), "{o}");
    assert!(o.contains("\tdb store"), "{o}");
    // Reachable by name (ping needs no server).
    let o = d.ok(&[
        "run",
        "--rm",
        "--network",
        "backend",
        "busybox",
        "ping",
        "-c",
        "1",
        "-W",
        "2",
        "store",
    ]);
    assert!(o.contains("1 packets received"), "{o}");

    let v: Value = serde_json::from_str(&d.ok(&["network", "inspect", "backend"])).unwrap();
    assert_eq!(v[0]["IPAM"]["Config"][0]["Subnet"], "10.213.7.0/24");
    assert_eq!(v[0]["Containers"].as_object().unwrap().len(), 1);
    let ls = d.ok(&["network", "ls", "--format", "{{.Name}}"]);
    for n in ["backend", "bridge", "host", "none"] {
        assert!(ls.lines().any(|l| l == n), "{ls}");
    }
    let e = d.fails(&["network", "rm", "backend"]);
    assert!(e.contains("has active endpoints"), "{e}");

    // --ip: a fixed address on a user network, refused when taken or on the default bridge.
    d.ok(&[
        "run",
        "-d",
        "--name",
        "fixed",
        "--network",
        "backend",
        "--ip",
        "10.213.7.50",
        "busybox",
        "sleep",
        "600",
    ]);
    let ip = d.ok(&[
        "inspect",
        "--format",
        "{{.NetworkSettings.Networks.backend.IPAddress}}",
        "fixed",
    ]);
    assert_eq!(ip.trim(), "10.213.7.50");
    let e = d.fails(&[
        "run",
        "--rm",
        "--network",
        "backend",
        "--ip",
        "10.213.7.50",
        "busybox",
        "true",
    ]);
    assert!(e.contains("Address already in use"), "{e}");
    let e = d.fails(&["run", "--rm", "--ip", "172.17.0.99", "busybox", "true"]);
    assert!(e.contains("user defined networks only"), "{e}");
    d.ok(&["rm", "-f", "fixed"]);

    // connect / disconnect a running container on the default bridge.
    d.ok(&["run", "-d", "--name", "app", "busybox", "sleep", "600"]);
    d.ok(&["network", "connect", "backend", "app"]);
    let o = d.ok(&["exec", "app", "ping", "-c", "1", "-W", "2", "db"]);
    assert!(o.contains("1 packets received"), "{o}");
    d.ok(&["network", "disconnect", "backend", "app"]);
    let o = d.ok(&["exec", "app", "ls", "/sys/class/net"]);
    assert!(!o.contains("eth1"), "{o}");

    d.ok(&["rm", "-f", "db", "app"]);
    d.ok(&["network", "rm", "backend"]);
    let e = d.fails(&["network", "inspect", "backend"]);
    assert!(e.contains("not found"), "{e}");
}

#[test]
fn daemon_restart_keeps_networking() {
    // The daemon's own drop removes the containers (no networks made here).
    let mut d = setup();
    let port = free_port();
    d.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "-p",
        &format!("{port}:80"),
        "busybox",
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/",
    ]);
    d.ok(&["run", "-d", "--name", "gone", "busybox", "sleep", "600"]);
    let gone_id = d
        .ok(&["inspect", "--format", "{{.Id}}", "gone"])
        .trim()
        .to_string();
    assert!(http_get(&format!("127.0.0.1:{port}")).starts_with("HTTP/1."));
    d.kill9();
    // The published port keeps answering while the daemon is down.
    assert!(http_get(&format!("127.0.0.1:{port}")).starts_with("HTTP/1."));
    // While the daemon is down, one container vanishes behind its back.
    let dir = d.root().join(format!("containers/{gone_id}"));
    let shim: i32 = std::fs::read_to_string(dir.join("shim.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let children =
        std::fs::read_to_string(format!("/proc/{shim}/task/{shim}/children")).unwrap_or_default();
    for pid in
        std::iter::once(shim).chain(children.split_whitespace().filter_map(|p| p.parse().ok()))
    {
        // SAFETY: killing processes of a container this test created.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    // And a proxy whose record was never written (a crash in between).
    let mut stale = std::process::Command::new(common::amber_bin())
        .args([
            "proxy",
            "--proto",
            "tcp",
            "--host",
            "127.0.0.1:0",
            "--target",
            "127.0.0.1:9",
        ])
        .arg("--tag")
        .arg(d.root().join("containers").join("0".repeat(64)))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(stale.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert!(line.starts_with("ok "), "{line}");
    std::thread::sleep(Duration::from_millis(300));
    d.spawn();
    let deadline = Instant::now() + Duration::from_secs(5);
    while stale.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "stale proxy still running");
        std::thread::sleep(Duration::from_millis(20));
    }
    let answer = http_get(&format!("127.0.0.1:{port}"));
    assert!(answer.starts_with("HTTP/1."), "{answer}\n{}", d.log());
    let ip = d
        .ok(&[
            "inspect",
            "--format",
            "{{.NetworkSettings.IPAddress}}",
            "web",
        ])
        .trim()
        .to_string();
    assert!(http_get(&format!("{ip}:80")).starts_with("HTTP/1."));
    // The vanished container's veth and namespace were cleaned at start.
    assert_eq!(veths_on(&d.bridge).len(), 1, "{:?}", veths_on(&d.bridge));
    assert!(!d.root().join("netns").join(&gone_id).exists());
}

#[test]
fn nothing_left_behind() {
    let d = setup();
    let _c = Cleanup(&d);
    for i in 0..20 {
        let name = format!("c{i}");
        let port = free_port();
        d.ok(&[
            "run",
            "-d",
            "--name",
            &name,
            "-p",
            &format!("{port}:80"),
            "-p",
            "81/udp",
            "busybox",
            "sleep",
            "600",
        ]);
        d.ok(&["rm", "-f", &name]);
        assert!(TcpListener::bind(format!("0.0.0.0:{port}")).is_ok());
    }
    assert!(veths_on(&d.bridge).is_empty());
    assert!(d.entries("netns").is_empty(), "{:?}", d.entries("netns"));
    // No lease survives its container.
    let v: Value = serde_json::from_str(&d.ok(&["network", "inspect", "bridge"])).unwrap();
    assert_eq!(v[0]["Containers"], serde_json::json!({}));
    let db = rusqlite::Connection::open(d.root().join("amber.db")).unwrap();
    let leases: i64 = db
        .query_row("SELECT count(*) FROM endpoints", [], |r| r.get(0))
        .unwrap();
    assert_eq!(leases, 0);
    drop(db);
    // The bridge holds only its gateway address.
    let addrs = stdout(
        &std::process::Command::new("ip")
            .args(["-o", "addr", "show", "dev", &d.bridge])
            .output()
            .unwrap(),
    );
    assert_eq!(
        addrs.lines().filter(|l| l.contains(" inet ")).count(),
        1,
        "{addrs}"
    );
    // No proxy process is left.
    assert!(d.live_shims().is_empty());
    assert!(amber::runtime::host_mounts_under(&d.root()).is_empty());
    // A clean stop with nothing running removes the bridge and the rules.
    drop(_c);
    let mut d = d;
    d.stop();
    assert!(!d.bridge_exists());
    let table = amber::net::firewall::table_name(&d.bridge);
    let o = std::process::Command::new("nft")
        .args(["list", "table", "ip", &table])
        .output()
        .unwrap();
    assert!(!o.status.success(), "{}", stdout(&o));
    assert!(Path::new(&d.root()).exists());
}

#[test]
fn bip_and_daemon_json() {
    let cfg = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(cfg.path(), r#"{"bip": "10.215.4.1/24"}"#).unwrap();
    // The flag wins over the file.
    let d = Daemon::start_with_args(&["--bip", "10.215.3.1/24"]);
    d.import_busybox("busybox");
    let _c = Cleanup(&d);
    let o = d.ok(&[
        "run", "--rm", "busybox", "ip", "-4", "-o", "addr", "show", "eth0",
    ]);
    assert!(o.contains("inet 10.215.3.2/24"), "{o}");
    let v: Value = serde_json::from_str(&d.ok(&["network", "inspect", "bridge"])).unwrap();
    assert_eq!(v[0]["IPAM"]["Config"][0]["Gateway"], "10.215.3.1");
    assert_eq!(v[0]["Options"]["com.docker.network.bridge.name"], d.bridge);
    drop(_c);
    drop(d);

    let mut d = Daemon::start_with_args(&[]);
    d.stop();
    // The file applies when no flag says otherwise.
    d.extra_args = vec!["--config-file".into(), cfg.path().to_str().unwrap().into()];
    d.spawn();
    d.import_busybox("busybox");
    let o = d.ok(&[
        "run", "--rm", "busybox", "ip", "-4", "-o", "addr", "show", "eth0",
    ]);
    assert!(o.contains("inet 10.215.4.2/24"), "{o}");
    d.remove_all_containers();
}

/// A network namespace this test creates, reached from the host through a
/// veth pair: stands in for "outside" without any traffic leaving the host.
struct Outside {
    ns: String,
    host_if: String,
    server: Option<std::process::Child>,
}

impl Drop for Outside {
    fn drop(&mut self) {
        if let Some(mut c) = self.server.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::process::Command::new("ip")
            .args(["link", "del", &self.host_if])
            .status();
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &self.ns])
            .status();
    }
}

fn sh(cmd: &str) {
    let o = std::process::Command::new("sh")
        .args(["-c", cmd])
        .output()
        .unwrap();
    assert!(o.status.success(), "{cmd}: {}", stderr(&o));
}

#[test]
fn outbound_traffic_is_masqueraded() {
    let d = setup();
    let _c = Cleanup(&d);
    let n = std::process::id() % 200 + 20;
    let (host_ip, out_ip) = (format!("10.216.{n}.1"), format!("10.216.{n}.2"));
    let mut out = Outside {
        ns: format!("amt-out-{}", std::process::id()),
        host_if: format!("amo{}", std::process::id() % 10_000_000),
        server: None,
    };
    let www = d.dir.path().join("outside");
    std::fs::create_dir_all(www.join("cgi-bin")).unwrap();
    std::fs::write(
        www.join("cgi-bin/peer"),
        "#!/bin/sh\necho Content-Type: text/plain\necho\necho \"$REMOTE_ADDR\"\n",
    )
    .unwrap();
    sh(&format!("chmod 755 {}/cgi-bin/peer", www.display()));
    sh(&format!(
        "ip netns add {ns} && ip link add {h} type veth peer name eth0 netns {ns} && \
         ip addr add {host_ip}/24 dev {h} && ip link set {h} up && \
         ip -n {ns} addr add {out_ip}/24 dev eth0 && ip -n {ns} link set eth0 up && ip -n {ns} link set lo up",
        ns = out.ns,
        h = out.host_if
    ));
    out.server = Some(
        std::process::Command::new("ip")
            .args([
                "netns", "exec", &out.ns, "busybox", "httpd", "-f", "-p", "8000", "-h",
            ])
            .arg(&www)
            .spawn()
            .unwrap(),
    );
    let url = format!("http://{out_ip}:8000/cgi-bin/peer");
    let o = d.ok(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        &format!("for i in 1 2 3 4 5 6 7 8 9 10; do wget -q -O- {url} && exit; sleep 0.3; done"),
    ]);
    // The outside sees the host's address, not the container's.
    // (busybox httpd shows IPv4 peers in their mapped IPv6 form.)
    assert!(
        o.trim() == host_ip || o.trim() == format!("[::ffff:{host_ip}]"),
        "{o}"
    );
    // An --internal network has no way out.
    d.ok(&[
        "network",
        "create",
        "--internal",
        "--subnet",
        "10.217.1.0/24",
        "closed",
    ]);
    let o = d.amber(&[
        "run",
        "--rm",
        "--network",
        "closed",
        "busybox",
        "wget",
        "-q",
        "-T",
        "2",
        "-O-",
        &url,
    ]);
    assert!(!o.status.success(), "{}", stdout(&o));
}
