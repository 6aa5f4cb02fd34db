//! Cluster commands (docs/cluster.md) on a three-host cluster of network
//! namespaces (tests/cluster_common): inventory, whole-cluster ps, capture
//! into one bundle set, search across hosts, set diff and removal, cluster
//! baseline and rollback, and a partial set when hosts die or hang
//! mid-capture.

mod cluster_common;
mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use cluster_common::Cluster;
use common::{amber_bin, http_get, json, stderr, stdout};

/// Busybox and one running container `app` on every host, logging a line
/// naming its host.
fn with_apps(c: &Cluster) {
    for h in &c.hosts {
        h.daemon.import_busybox("busybox");
        h.daemon.ok(&[
            "run",
            "-d",
            "--name",
            "app",
            "busybox",
            "sh",
            "-c",
            &format!(
                "echo started-on-{0}; echo secret-{0}-line; exec sleep 3600",
                h.name
            ),
        ]);
        h.daemon.wait_log("app", &format!("secret-{}-line", h.name));
    }
}

#[test]
fn cluster_inventory_ps_capture_search_rollback() {
    let c = Cluster::new(3, &[]);
    with_apps(&c);
    let coord = &c.coord;

    // Inventory: bad input is refused, the hosts are listed as reachable.
    coord.fails(&["cluster", "add", "-bad", "tcp://10.0.0.1:2376"]);
    coord.fails(&["cluster", "add", "x1", "http://10.0.0.1"]);
    coord.fails(&[
        "cluster",
        "add",
        "x1",
        "tcp://10.0.0.1:2376",
        "--auth-token-file",
        "/nonexistent/token",
    ]);
    c.add_all();
    let dup = coord.fails(&["cluster", "add", "h1", &c.host(1).daemon.host()]);
    assert!(dup.contains("already"), "{dup}");
    let ls = json(&coord.ok(&["cluster", "ls", "--format", "json"]));
    let ls = ls.as_array().unwrap();
    assert_eq!(ls.len(), 3, "{ls:?}");
    for h in ls {
        assert_eq!(h["Reachable"], true, "{h}");
        assert_eq!(h["Containers"], 1, "{h}");
        assert!(!h["Version"].as_str().unwrap().is_empty(), "{h}");
    }
    let table = coord.ok(&["cluster", "ls"]);
    assert!(table.starts_with("NAME"), "{table}");

    // ps: one table, HOST first.
    let ps = coord.ok(&["cluster", "ps"]);
    let lines: Vec<&str> = ps.lines().collect();
    assert!(lines[0].starts_with("HOST"), "{ps}");
    for h in ["h1", "h2", "h3"] {
        assert!(
            lines.iter().any(|l| l.starts_with(h) && l.contains("app")),
            "{ps}"
        );
    }
    let psj = json(&coord.ok(&["cluster", "ps", "--format", "json"]));
    assert_eq!(psj.as_array().unwrap().len(), 3, "{psj}");
    let images = coord.ok(&["cluster", "images"]);
    assert_eq!(
        images.lines().filter(|l| l.contains("busybox")).count(),
        3,
        "{images}"
    );

    // Capture: one set, every host ok, the bundles here.
    let set = coord
        .ok(&["cluster", "capture", "-l", "first", "--annotate", "run=1"])
        .trim()
        .to_string();
    assert!(set.starts_with("s-"), "{set}");
    let m = json(&coord.ok(&["bundle", "inspect", &set]));
    assert_eq!(m["label"], "first");
    assert_eq!(m["annotations"]["run"], "1");
    let hosts = m["hosts"].as_array().unwrap();
    assert_eq!(hosts.len(), 3, "{m}");
    for h in hosts {
        assert_eq!(h["status"], "ok", "{m}");
        assert_eq!(h["present"], true, "{m}");
        assert!(h["bytes"].as_u64().unwrap() > 0, "{m}");
        let b = h["bundle"].as_str().unwrap();
        let bm = json(&coord.ok(&["bundle", "inspect", b]));
        assert_eq!(bm["containers"][0]["name"], "app");
    }
    let bls = coord.ok(&["bundle", "ls"]);
    assert!(bls.contains(&set) && bls.contains("set: 3 hosts"), "{bls}");
    assert_eq!(bls.lines().count(), 2, "members hidden without -a: {bls}");
    let bls_all = coord.ok(&["bundle", "ls", "-a"]);
    assert_eq!(bls_all.lines().count(), 5, "{bls_all}");

    // Search finds host 2's line, naming the host.
    let hits = json(&coord.ok(&["bundle", "search", "secret-h2-line", "--format", "json"]));
    let hits = hits.as_array().unwrap();
    assert!(!hits.is_empty());
    assert_eq!(hits[0]["host"], "h2", "{hits:?}");
    assert_eq!(hits[0]["set"], set.as_str());
    let text = coord.ok(&["bundle", "search", "secret-h2-line", "--bundle", &set]);
    assert!(text.contains(" h2 app "), "{text}");

    // A second set after a change on host 1: the diff shows it per host.
    c.host(1)
        .daemon
        .ok(&["exec", "app", "sh", "-c", "echo changed > /changed.txt"]);
    let set2 = coord.ok(&["cluster", "capture", "-q"]).trim().to_string();
    let d = coord.ok(&["bundle", "diff", &set, &set2]);
    assert!(d.contains("host h1") && d.contains("A /changed.txt"), "{d}");
    let dj = json(&coord.ok(&["bundle", "diff", &set, &set2, "--format", "json"]));
    assert_eq!(dj["hosts"].as_array().unwrap().len(), 3, "{dj}");

    // Removing a set removes its bundles.
    coord.ok(&["bundle", "rm", &set2]);
    let bls_all = coord.ok(&["bundle", "ls", "-a"]);
    assert!(!bls_all.contains(&set2), "{bls_all}");
    assert_eq!(bls_all.lines().count(), 5, "{bls_all}");
    coord.fails(&["bundle", "inspect", &set2]);

    // Cluster baseline and rollback: a file written after the baseline is
    // gone on every host.
    let out = coord.ok(&["cluster", "baseline", "create", "clean"]);
    assert_eq!(
        out.lines().filter(|l| l.contains(" ok ")).count(),
        3,
        "{out}"
    );
    for h in &c.hosts {
        h.daemon
            .ok(&["exec", "app", "sh", "-c", "echo dirty > /after.txt"]);
    }
    let out = coord.ok(&["cluster", "rollback", "clean"]);
    assert!(out.starts_with("HOST"), "{out}");
    assert_eq!(
        out.lines().filter(|l| l.contains(" ok ")).count(),
        3,
        "{out}"
    );
    for h in &c.hosts {
        let o = h.daemon.amber(&["exec", "app", "cat", "/after.txt"]);
        assert!(
            !o.status.success(),
            "{}: /after.txt survived the rollback: {}",
            h.name,
            stdout(&o)
        );
    }
    coord.fails(&["cluster", "rollback", "nosuch"]);

    // Inventory removal.
    coord.ok(&["cluster", "rm", "h3"]);
    let ls = json(&coord.ok(&["cluster", "ls", "--format", "json"]));
    assert_eq!(ls.as_array().unwrap().len(), 2);
}

#[test]
fn cluster_ps_survives_a_dead_host() {
    let mut c = Cluster::new(2, &[]);
    with_apps(&c);
    c.add_all();
    c.host_mut(2).daemon.kill9();
    let out = c.coord.amber(&["cluster", "ps"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("h1"), "{}", stdout(&out));
    assert!(stderr(&out).contains("host h2"), "{}", stderr(&out));
    c.host_mut(1).daemon.kill9();
    let out = c.coord.amber(&["cluster", "ps"]);
    assert!(!out.status.success(), "all hosts down must fail");
    // The cluster's drop starts the killed daemons again to clean up.
}

/// Host 2 is cut off (its namespace's link downed) and host 3's daemon is
/// killed while they hold their containers frozen mid-capture: the set is
/// partial: hosts 2 and 3 failed (2 timed out), host 1 ok.
#[test]
fn partial_set_when_hosts_hang_or_die_mid_capture() {
    let mut c = Cluster::new(3, &[("AMBER_CAPTURE_HOLD_MS", "2500")]);
    with_apps(&c);
    c.add_all();
    let child = Command::new(amber_bin())
        .arg("-H")
        .arg(c.coord.host())
        .args([
            "cluster",
            "capture",
            "-l",
            "partial",
            "--timeout",
            "6",
            "--format",
            "json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // All three are holding their frozen container now.
    std::thread::sleep(Duration::from_millis(1200));
    c.host(2).set_link(false);
    c.host_mut(3).daemon.kill9();
    let out = child.wait_with_output().unwrap();
    c.host(2).set_link(true);
    assert!(
        out.status.success(),
        "a partial set is still a set: {}",
        stderr(&out)
    );
    let set = json(&stdout(&out));
    let st: Vec<(&str, &str)> = set["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["host"].as_str().unwrap(), h["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        st,
        [("h1", "ok"), ("h2", "failed"), ("h3", "failed")],
        "{set}"
    );
    // Host 2 was cut off (no answer), host 3's daemon died (connection
    // lost): both failed, each error saying which.
    let err_of = |i: usize| set["hosts"][i]["error"].as_str().unwrap().to_string();
    assert!(err_of(1).contains("timed out"), "{set}");
    assert!(!err_of(2).contains("timed out"), "{set}");
    let err = stderr(&out);
    assert!(
        err.contains("host h2: failed") && err.contains("host h3: failed"),
        "{err}"
    );
    let id = set["id"].as_str().unwrap();
    let m = json(&c.coord.ok(&["bundle", "inspect", id]));
    assert_eq!(m["hosts"][0]["present"], true, "{m}");
    assert_eq!(m["hosts"][2]["present"], false, "{m}");
    assert!(
        m["hosts"][2]["error"].as_str().unwrap().contains("capture"),
        "{m}"
    );
    // The coordinator holds host 1's bundle, nothing half-imported.
    c.coord.assert_check_clean();
    let hits = json(
        &c.coord
            .ok(&["bundle", "search", "secret-h1-line", "--format", "json"]),
    );
    assert_eq!(hits[0]["host"], "h1");
}

/// A running web container (busybox httpd, a published port, content on a
/// named volume) moves from host 1 to host 3 over TLS and answers there
/// with the same content; `cluster migrate --all` empties a host.
#[test]
fn migrate_web_container_between_hosts() {
    let c = Cluster::new(3, &[]);
    for h in &c.hosts {
        h.daemon.import_busybox("busybox");
    }
    c.add_all();
    let h1 = &c.host(1).daemon;
    h1.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "-p",
        "8080:80",
        "-v",
        "webdata:/www",
        "busybox",
        "sh",
        "-c",
        "echo migrated-page-$(hostname) > /www/index.html; exec httpd -f -p 80 -h /www",
    ]);
    let before = http_get(&format!("{}:8080", c.host(1).addr));
    let page = before.lines().last().unwrap().to_string();
    assert!(page.starts_with("migrated-page-"), "{before}");

    let out = c.coord.ok(&[
        "migrate", "web", "--from", "h1", "--to", "h3", "--format", "json",
    ]);
    let rep = json(&out);
    assert_eq!(rep["containers"][0]["name"], "web", "{rep}");
    // Same content (the volume came along), on host 3's address.
    let after = http_get(&format!("{}:8080", c.host(3).addr));
    assert!(after.contains(&page), "{after}");
    let ps1 = c.host(1).daemon.ok(&["ps", "-a", "--format", "{{.Names}}"]);
    assert!(!ps1.contains("web"), "web is still on host 1: {ps1}");
    let v3 = c.host(3).daemon.ok(&["volume", "ls", "-q"]);
    assert!(v3.contains("webdata"), "{v3}");
    let h1_port = format!("{}:8080", c.host(1).addr).parse().unwrap();
    assert!(
        std::net::TcpStream::connect_timeout(&h1_port, Duration::from_secs(2)).is_err(),
        "host 1 still serves the page"
    );

    // A whole host: everything of host 2 goes to host 1.
    let h2 = &c.host(2).daemon;
    for n in ["job1", "job2"] {
        h2.ok(&["run", "-d", "--name", n, "busybox", "sleep", "3600"]);
    }
    c.coord
        .ok(&["cluster", "migrate", "--all", "--from", "h2", "--to", "h1"]);
    assert_eq!(h2.ok(&["ps", "-aq"]).trim(), "");
    let ps1 = c.host(1).daemon.ok(&["ps", "--format", "{{.Names}}"]);
    assert!(ps1.contains("job1") && ps1.contains("job2"), "{ps1}");
    c.coord.assert_check_clean();
}
