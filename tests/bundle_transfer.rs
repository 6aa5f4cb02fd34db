//! `bundle push/pull` and `migrate` between daemons on this machine, each
//! with its own data root, bridge and cgroup parent, reached over their
//! unix sockets (docs/transfer.md).

mod common;

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{amber_bin, free_port, http_get, json, sha256_hex, Daemon};

/// `amber -H d ARGS` started in the background.
fn spawn(d: &Daemon, args: &[&str]) -> Child {
    Command::new(amber_bin())
        .arg("-H")
        .arg(d.host())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Verified blobs in a receiver's resumable staging dir of `bundle`.
fn staged(d: &Daemon, bundle: &str) -> usize {
    std::fs::read_dir(d.root().join("tmp").join(format!("bundle-recv-{bundle}")))
        .map(|rd| {
            rd.flatten()
                .filter(|e| !e.file_name().to_string_lossy().ends_with(".part"))
                .count()
        })
        .unwrap_or(0)
}

/// Wait until the receiver has verified at least `n` blobs of `bundle`.
fn wait_staged(d: &Daemon, bundle: &str, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while staged(d, bundle) < n {
        assert!(Instant::now() < deadline, "the transfer never started");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn transfer(d: &Daemon, args: &[&str]) -> serde_json::Value {
    let mut a = args.to_vec();
    a.extend(["--format", "json"]);
    json(&d.ok(&a))
}

#[test]
fn push_then_pull_sends_only_missing_blobs() {
    let d1 = Daemon::start();
    let d2 = Daemon::start();
    d1.import_busybox("busybox");
    d1.ok(&[
        "run",
        "--name",
        "big",
        "busybox",
        "sh",
        "-c",
        "head -c 4000000 /dev/urandom > /data.bin; echo first-line",
    ]);
    let b1 = d1.ok(&["capture", "big"]).trim().to_string();
    let r1 = transfer(&d1, &["bundle", "push", &d2.host(), &b1]);
    assert_eq!(r1["bundle"], b1.as_str());
    assert_eq!(r1["blobs_sent"], r1["blobs"], "{r1}");
    let first = r1["bytes_sent"].as_u64().unwrap();
    assert!(first > 4_000_000, "{r1}");
    // Identical on the receiver, its image installed.
    let cat =
        |d: &Daemon, b: &str| sha256_hex(&d.amber(&["bundle", "cat", b, "big:/data.bin"]).stdout);
    assert_eq!(cat(&d1, &b1), cat(&d2, &b1));
    d2.ok(&["image", "inspect", "busybox"]);
    // Pushing it again moves nothing.
    let again = transfer(&d1, &["bundle", "push", &d2.host(), &b1]);
    assert_eq!(again["bytes_sent"], 0, "{again}");

    // A small change: the second bundle shares all but a few blobs; pulled
    // by the receiver, only those move.
    d1.ok(&[
        "run",
        "--name",
        "small",
        "busybox",
        "sh",
        "-c",
        "echo tiny > /t.txt",
    ]);
    let b2 = d1.ok(&["capture", "big", "small"]).trim().to_string();
    let r2 = transfer(&d2, &["bundle", "pull", &d1.host(), &b2]);
    let second = r2["bytes_sent"].as_u64().unwrap();
    assert!(second * 20 < first, "first {first}, second {second}: {r2}");
    assert!(r2["blobs_sent"].as_u64().unwrap() < r2["blobs"].as_u64().unwrap());
    assert_eq!(
        d2.ok(&["bundle", "cat", &b2, "small:/t.txt"]).trim(),
        "tiny"
    );
    assert_eq!(cat(&d2, &b2), cat(&d1, &b1));
    // Plain output says what moved.
    let b3 = d1.ok(&["capture", "small"]).trim().to_string();
    let line = d1.ok(&["bundle", "push", &d2.host(), &b3]);
    assert!(line.starts_with(&format!("pushed {b3} to ")), "{line}");
    d1.assert_check_clean();
    d2.assert_check_clean();
    // A bundle the source does not have: one line.
    let err = d2.fails(&["bundle", "pull", &d1.host(), "b-000000000000"]);
    assert!(err.contains("b-000000000000"), "{err}");
}

#[test]
fn interrupted_push_resumes() {
    let d1 = Daemon::start();
    let mut d2 = Daemon::start();
    d1.import_busybox("busybox");
    d1.ok(&[
        "run",
        "--name",
        "big",
        "busybox",
        "sh",
        "-c",
        "head -c 80000000 /dev/urandom > /data.bin",
    ]);
    let b = d1.ok(&["capture", "big"]).trim().to_string();
    let push = spawn(&d1, &["bundle", "push", &d2.host(), &b]);
    wait_staged(&d2, &b, 8);
    d2.kill9();
    let out = push.wait_with_output().unwrap();
    assert!(!out.status.success(), "the push should fail");
    d2.spawn();
    let kept = staged(&d2, &b);
    assert!(kept >= 8, "the verified blobs survive a restart: {kept}");
    d2.assert_check_clean();
    assert!(d2.fails(&["bundle", "inspect", &b]).contains(&b[..8]));
    let r = transfer(&d1, &["bundle", "push", &d2.host(), &b]);
    let sent = r["bytes_sent"].as_u64().unwrap();
    // The full archive is over 80 MB; the verified blobs are not sent again.
    assert!(sent < 80_000_000, "{r}");
    assert_eq!(
        r["blobs_sent"].as_u64().unwrap() + kept as u64,
        r["blobs"].as_u64().unwrap(),
        "{r}"
    );
    assert_eq!(
        sha256_hex(&d1.amber(&["bundle", "cat", &b, "big:/data.bin"]).stdout),
        sha256_hex(&d2.amber(&["bundle", "cat", &b, "big:/data.bin"]).stdout)
    );
    assert_eq!(staged(&d2, &b), 0, "the staging dir goes once imported");
    d1.assert_check_clean();
    d2.assert_check_clean();
}

#[test]
fn migrate_moves_a_web_container_with_port_and_volume() {
    let d1 = Daemon::start();
    let d2 = Daemon::start();
    d1.import_busybox("busybox");
    let port = free_port();
    let publish = format!("127.0.0.1:{port}:80");
    let vol = format!("mig{}", std::process::id());
    let mount = format!("{vol}:/www");
    d1.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "-p",
        &publish,
        "-v",
        &mount,
        "busybox",
        "sh",
        "-c",
        "echo migrated-content > /www/index.html; exec httpd -f -p 80 -h /www",
    ]);
    let addr = format!("127.0.0.1:{port}");
    assert!(http_get(&addr).contains("migrated-content"));
    let out = d1.ok(&["migrate", "web", "--to", &d2.host()]);
    assert!(out.contains("web: migrated to"), "{out}");
    assert!(out.contains("removed on the source"), "{out}");
    assert!(http_get(&addr).contains("migrated-content"));
    let v = json(&d2.ok(&["inspect", "web"]));
    assert_eq!(v[0]["State"]["Running"], true);
    d1.fails(&["inspect", "web"]);
    d2.ok(&["volume", "inspect", &vol]);
    d2.ok(&["rm", "-f", "web"]);
    d1.assert_check_clean();
    d2.assert_check_clean();
}

#[test]
fn migrate_keep_and_target_killed_midway() {
    let d1 = Daemon::start();
    let mut d2 = Daemon::start();
    d1.import_busybox("busybox");
    d1.ok(&[
        "run",
        "-d",
        "--name",
        "kept",
        "busybox",
        "sh",
        "-c",
        "echo k > /k; sleep 600",
    ]);
    let r = json(&d1.ok(&[
        "migrate",
        "kept",
        "--to",
        &d2.host(),
        "--keep",
        "--format",
        "json",
    ]));
    assert_eq!(r["containers"][0]["source"], "kept", "{r}");
    assert_eq!(
        json(&d1.ok(&["inspect", "kept"]))[0]["State"]["Running"],
        true
    );
    assert_eq!(
        json(&d2.ok(&["inspect", "kept"]))[0]["State"]["Running"],
        true
    );
    d2.ok(&["rm", "-f", "kept"]);
    // A --rm container: one round, still moved.
    d1.ok(&[
        "run",
        "-d",
        "--rm",
        "--name",
        "ephemeral",
        "busybox",
        "sh",
        "-c",
        "echo e > /e; sleep 600",
    ]);
    d1.ok(&["migrate", "ephemeral", "--to", &d2.host()]);
    assert_eq!(d2.ok(&["exec", "ephemeral", "cat", "/e"]).trim(), "e");
    d1.fails(&["inspect", "ephemeral"]);
    d2.ok(&["rm", "-f", "ephemeral"]);

    // The target dies mid-transfer: the source container stays, running.
    d1.ok(&[
        "run",
        "-d",
        "--name",
        "heavy",
        "busybox",
        "sh",
        "-c",
        "head -c 80000000 /dev/urandom > /big.bin; echo ready; sleep 600",
    ]);
    d1.wait_log("heavy", "ready");
    let before = json(&d1.ok(&["inspect", "heavy"]))[0]["Id"].clone();
    let mig = spawn(&d1, &["migrate", "heavy", "--to", &d2.host()]);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let n = std::fs::read_dir(d2.root().join("tmp"))
            .map(|rd| {
                rd.flatten()
                    .filter(|e| e.file_name().to_string_lossy().starts_with("bundle-recv-"))
                    .map(|e| std::fs::read_dir(e.path()).map(|r| r.count()).unwrap_or(0))
                    .sum::<usize>()
            })
            .unwrap_or(0);
        if n >= 4 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the migration never reached the target"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    d2.kill9();
    let out = mig.wait_with_output().unwrap();
    assert!(!out.status.success());
    let v = json(&d1.ok(&["inspect", "heavy"]));
    assert_eq!(v[0]["Id"], before);
    assert_eq!(v[0]["State"]["Running"], true);
    assert_eq!(
        d1.ok(&["exec", "heavy", "sh", "-c", "wc -c < /big.bin"])
            .trim(),
        "80000000"
    );
    d2.spawn();
    d2.fails(&["inspect", "heavy"]);
    d1.assert_check_clean();
    d2.assert_check_clean();
    // What the target verified waits for a retry; `bundle prune` drops it.
    let recv = |d: &Daemon| {
        d.entries("tmp")
            .into_iter()
            .filter(|e| e.starts_with("bundle-recv-"))
            .count()
    };
    assert_eq!(recv(&d2), 1);
    d2.ok(&["bundle", "prune"]);
    assert_eq!(recv(&d2), 0);
}

#[test]
fn migrate_from_another_host_through_the_coordinator() {
    let coordinator = Daemon::start();
    let d1 = Daemon::start();
    let d2 = Daemon::start();
    d1.import_busybox("busybox");
    d1.ok(&[
        "run",
        "-d",
        "--name",
        "far",
        "busybox",
        "sh",
        "-c",
        "echo far > /f; sleep 600",
    ]);
    d1.ok(&[
        "run",
        "--name",
        "done",
        "busybox",
        "sh",
        "-c",
        "echo done > /d",
    ]);
    let r = json(&coordinator.ok(&[
        "migrate",
        "far",
        "done",
        "--from",
        &d1.host(),
        "--to",
        &d2.host(),
        "--format",
        "json",
    ]));
    assert_eq!(r["containers"].as_array().unwrap().len(), 2, "{r}");
    let far = json(&d2.ok(&["inspect", "far"]));
    assert_eq!(far[0]["State"]["Running"], true);
    assert_eq!(d2.ok(&["exec", "far", "cat", "/f"]).trim(), "far");
    let done = json(&d2.ok(&["inspect", "done"]));
    assert_eq!(done[0]["State"]["Running"], false);
    d1.fails(&["inspect", "far"]);
    d1.fails(&["inspect", "done"]);
    // A name in use on the target: refused before anything changes.
    d1.ok(&["run", "-d", "--name", "far", "busybox", "sleep", "600"]);
    let err = coordinator.fails(&["migrate", "far", "--from", &d1.host(), "--to", &d2.host()]);
    assert!(err.contains("far"), "{err}");
    assert_eq!(
        json(&d1.ok(&["inspect", "far"]))[0]["State"]["Running"],
        true
    );
    d2.ok(&["rm", "-f", "far"]);
    for d in [&coordinator, &d1, &d2] {
        d.assert_check_clean();
    }
}

#[test]
fn parallel_pulls_into_one_daemon() {
    let d1 = Daemon::start();
    let d2 = Daemon::start();
    let d3 = Daemon::start();
    for (d, n) in [(&d1, "ca"), (&d2, "cb")] {
        d.import_busybox("busybox");
        d.ok(&[
            "run",
            "--name",
            n,
            "busybox",
            "sh",
            "-c",
            "head -c 20000000 /dev/urandom > /x.bin",
        ]);
    }
    let ba = d1.ok(&["capture", "ca"]).trim().to_string();
    let bb = d2.ok(&["capture", "cb"]).trim().to_string();
    let pa = spawn(&d3, &["bundle", "pull", &d1.host(), &ba]);
    let pb = spawn(&d3, &["bundle", "pull", &d2.host(), &bb]);
    for p in [pa, pb] {
        let out = p.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    d3.ok(&["bundle", "inspect", &ba]);
    d3.ok(&["bundle", "inspect", &bb]);
    d3.assert_check_clean();
}

/// A thin archive without a blob the receiver lacks is refused with one
/// line, and leaves nothing.
#[test]
fn thin_import_without_a_needed_blob_is_refused() {
    let d1 = Daemon::start();
    let d2 = Daemon::start();
    d1.import_busybox("busybox");
    d1.ok(&[
        "run",
        "--name",
        "cc",
        "busybox",
        "sh",
        "-c",
        "echo some-content > /c.txt",
    ]);
    let b = d1.ok(&["capture", "cc"]).trim().to_string();
    let full = d1.dir.path().join("full.tar");
    d1.ok(&["bundle", "export", &b, "-o", full.to_str().unwrap()]);
    // Drop the last blob entry.
    let mut a = tar::Archive::new(std::fs::File::open(&full).unwrap());
    let mut entries: Vec<(String, Vec<u8>)> = a
        .entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let p = e.path().unwrap().to_string_lossy().into_owned();
            let mut v = Vec::new();
            e.read_to_end(&mut v).unwrap();
            (p, v)
        })
        .collect();
    entries.pop();
    let thin = d1.dir.path().join("thin.tar");
    let mut w = tar::Builder::new(std::fs::File::create(&thin).unwrap());
    for (p, data) in &entries {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_path(p).unwrap();
        h.set_cksum();
        w.append(&h, &data[..]).unwrap();
    }
    w.finish().unwrap();
    drop(w);
    let post = |query: &str| {
        let out = Command::new("curl")
            .args(["-sS", "--unix-socket"])
            .arg(d2.socket())
            .args(["-X", "POST", "--data-binary"])
            .arg(format!("@{}", thin.display()))
            .arg(format!("http://amber/amber/v1/bundles/import{query}"))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let thin_err = post("?thin=1");
    assert!(
        thin_err.contains("neither in the archive nor in this store"),
        "{thin_err}"
    );
    let full_err = post("");
    assert!(
        full_err.contains("missing (truncated archive?)"),
        "{full_err}"
    );
    d2.fails(&["bundle", "inspect", &b]);
    assert!(d2.entries("tmp").is_empty(), "{:?}", d2.entries("tmp"));
    d2.assert_check_clean();
}
