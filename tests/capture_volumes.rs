//! `capture --volumes`: volume and bind mount content kept in the bundle,
//! browsed under its mount point, size-capped, and put back by `restore`
//! (here and on another daemon after export/import).

mod common;

use std::time::{Duration, Instant};

use common::Daemon;

use common::json;

#[test]
fn volumes_are_kept_browsed_capped_and_restored() {
    let d = Daemon::start();
    d.import_busybox("busybox");
    let bind = tempfile::tempdir().unwrap();
    std::fs::write(bind.path().join("host.txt"), "from the host\n").unwrap();
    let bind_arg = format!("{}:/bind", bind.path().display());
    d.ok(&["volume", "create", "webdata"]);
    d.ok(&[
        "run", "-d", "--name", "web", "-v", "webdata:/data", "-v", &bind_arg, "-v", "/anon",
        "busybox", "sh", "-c",
        "echo hello > /data/index.html; mkdir -p /data/sub; head -c 4096 /dev/zero > /data/sub/zeros; \
         echo anon > /anon/a.txt; echo ready; exec sleep 1000",
    ]);
    d.wait_log("web", "ready");

    // Without --volumes only the writable layer is kept.
    let plain = d.ok(&["capture", "web"]).trim().to_string();
    let err = d.fails(&["bundle", "cat", &plain, "web:/data/index.html"]);
    assert!(err.contains("not in the captured"), "{err}");

    let id = d
        .ok(&["capture", "--volumes", "web", "-l", "with volumes"])
        .trim()
        .to_string();
    assert_eq!(
        d.ok(&["bundle", "cat", &id, "web:/data/index.html"]),
        "hello\n"
    );
    assert_eq!(
        d.ok(&["bundle", "cat", &id, "web:/bind/host.txt"]),
        "from the host\n"
    );
    assert_eq!(d.ok(&["bundle", "cat", &id, "web:/anon/a.txt"]), "anon\n");
    let files = json(&d.ok(&["bundle", "files", &id, "web", "/data", "--format", "json"]));
    let paths: Vec<&str> = files
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert!(paths.contains(&"/data/sub/zeros"), "{paths:?}");
    let m = json(&d.ok(&["bundle", "inspect", &id]));
    let vols = m["containers"][0]["volumes"].as_array().unwrap();
    assert_eq!(vols.len(), 3, "{vols:?}");
    let data = vols.iter().find(|v| v["destination"] == "/data").unwrap();
    assert_eq!(data["name"], "webdata");
    assert_eq!(data["size"], 6 + 4096);

    // Over the cap: recorded, content not kept, said on stderr.
    let out = d.amber(&["capture", "--volumes", "--volumes-max-size", "1k", "web"]);
    assert!(out.status.success());
    assert!(
        common::stderr(&out).contains("/data not kept"),
        "{}",
        common::stderr(&out)
    );
    let capped = common::stdout(&out).trim().to_string();
    let m = json(&d.ok(&["bundle", "inspect", &capped]));
    let data = m["containers"][0]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["destination"] == "/data")
        .unwrap()
        .clone();
    assert!(
        data["skipped"].as_str().unwrap().contains("over the cap"),
        "{data}"
    );
    assert!(data.get("files").is_none());

    // Diff between the plain and the volume capture shows the volume files.
    let diff = json(&d.ok(&["bundle", "diff", &plain, &id, "--format", "json"]));
    let added = diff["containers"][0]["files"]["added"].to_string();
    assert!(added.contains("/data/index.html"), "{added}");

    // Against the live container: the volume's changed file, nothing else.
    d.ok(&[
        "exec",
        "web",
        "sh",
        "-c",
        "echo hello, changed > /data/index.html",
    ]);
    let live = json(&d.ok(&["bundle", "diff", &id, "--format", "json"]));
    let files = &live["containers"][0]["files"];
    assert_eq!(files["changed"][0]["path"], "/data/index.html", "{files}");
    assert_eq!(files["changed"].as_array().unwrap().len(), 1, "{files}");
    assert!(files["removed"].as_array().unwrap().is_empty(), "{files}");
    assert!(files["added"].as_array().unwrap().is_empty(), "{files}");

    // Same host: a non-empty named volume is not overwritten unless asked.
    let err = d.fails(&["restore", "--name-suffix", "-copy", &id]);
    assert!(
        err.contains("volume webdata") && err.contains("--replace"),
        "{err}"
    );
    d.ok(&[
        "exec",
        "web",
        "sh",
        "-c",
        "echo changed > /data/index.html; rm /anon/a.txt",
    ]);
    d.ok(&["restore", "--replace", &id]);
    assert_eq!(d.ok(&["exec", "web", "cat", "/data/index.html"]), "hello\n");
    assert_eq!(d.ok(&["exec", "web", "cat", "/anon/a.txt"]), "anon\n");
    d.assert_check_clean();

    // Another daemon: export (with the image), import, restore.
    let archive = d.dir.path().join("web.tar");
    d.ok(&["bundle", "export", &id, "-o", archive.to_str().unwrap()]);
    let d2 = Daemon::start();
    d2.ok(&["bundle", "import", archive.to_str().unwrap()]);
    let out = d2.amber(&["restore", &id]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert!(
        common::stderr(&out).contains("/bind not restored"),
        "{}",
        common::stderr(&out)
    );
    assert_eq!(
        d2.ok(&["exec", "web", "cat", "/data/index.html"]),
        "hello\n"
    );
    assert_eq!(
        d2.ok(&["exec", "web", "cat", "/data/sub/zeros"]).len(),
        4096
    );
    assert_eq!(d2.ok(&["exec", "web", "cat", "/anon/a.txt"]), "anon\n");
    let vols = json(&d2.ok(&["volume", "inspect", "webdata"]));
    assert_eq!(vols[0]["Name"], "webdata");
    d2.assert_check_clean();
    d.remove_all_containers();
    d2.remove_all_containers();
}

#[test]
fn rollback_resets_volumes_of_a_volume_baseline() {
    let d = Daemon::start();
    d.import_busybox("busybox");
    d.ok(&["volume", "create", "shared"]);
    for n in ["db", "app"] {
        d.ok(&[
            "run",
            "-d",
            "--name",
            n,
            "-v",
            "shared:/shared",
            "-v",
            "/own",
            "busybox",
            "sh",
            "-c",
            &format!("echo {n} > /own/who; echo base > /shared/state; echo ready; exec sleep 1000"),
        ]);
        d.wait_log(n, "ready");
    }
    d.ok(&["baseline", "create", "clean", "--all", "--volumes"]);
    for n in ["db", "app"] {
        d.ok(&[
            "exec",
            n,
            "sh",
            "-c",
            "echo dirty > /shared/state; echo junk > /shared/new; rm /own/who",
        ]);
    }
    let v = json(&d.ok(&["rollback", "clean", "--format", "json"]));
    assert_eq!(v["Reset"].as_array().unwrap().len(), 2, "{v}");
    for n in ["db", "app"] {
        assert_eq!(d.ok(&["exec", n, "cat", "/shared/state"]), "base\n");
        assert_eq!(d.ok(&["exec", n, "cat", "/own/who"]), format!("{n}\n"));
        assert!(d.amber(&["exec", n, "cat", "/shared/new"]).status.code() != Some(0));
    }
    // And again: the next rollback copy was prepared.
    d.ok(&["exec", "db", "sh", "-c", "echo dirty2 > /shared/state"]);
    d.ok(&["rollback", "clean"]);
    assert_eq!(d.ok(&["exec", "app", "cat", "/shared/state"]), "base\n");
    d.assert_check_clean();
    // The next rollback's copies are prepared in the background; then
    // nothing is left in tmp/.
    let t = Instant::now();
    while !d.entries("tmp").is_empty() {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "{:?}",
            d.entries("tmp")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    d.remove_all_containers();
}
