//! Capture bundles end to end: capture of running and stopped containers,
//! what a bundle holds (files, log, processes with a listening socket,
//! env), deduplicated second captures, search, files/cat, diff, removal.

mod common;

use serde_json::Value;

use common::Daemon;

fn setup() -> Daemon {
    let d = Daemon::start();
    d.import_busybox("busybox");
    d
}

use common::json;

fn blob_count(d: &Daemon) -> usize {
    d.entries("blobs/sha256").len()
}

#[test]
fn capture_holds_files_log_processes_and_sockets() {
    let d = setup();
    let blobs_before = blob_count(&d);
    d.ok(&[
        "run", "-d", "--name", "web", "-e", "MODE=capture-test", "busybox", "sh", "-c",
        "echo started-web; echo secret > /data.txt; mkdir -p /srv/a; ln -s /data.txt /srv/link; rm /etc/group; exec nc -l -p 1234",
    ]);
    d.ok(&[
        "run",
        "--name",
        "done",
        "busybox",
        "sh",
        "-c",
        "echo bye-done; echo finished > /s.txt",
    ]);
    d.wait_log("web", "started-web");
    // nc listens once the shell exec'd it.
    std::thread::sleep(std::time::Duration::from_millis(300));

    let summary = json(&d.ok(&[
        "capture",
        "web",
        "done",
        "-l",
        "bug 1234",
        "--annotate",
        "ticket=1234",
        "--format",
        "json",
    ]));
    let id = summary["Id"].as_str().unwrap().to_string();
    assert!(id.starts_with("b-"), "{summary}");
    assert!(summary["NewBytes"].as_u64().unwrap() > 0);
    // The running container was frozen for the walk and thawed after.
    let web = &summary["Containers"][0];
    assert_eq!(web["Frozen"], true, "{summary}");
    let state = json(&d.ok(&["inspect", "-f", "{{json .State}}", "web"]));
    assert_eq!(state["Status"], "running");
    assert_eq!(state["Paused"], false);

    let ls = json(&d.ok(&["bundle", "ls", "--format", "json"]));
    assert_eq!(ls[0]["id"], id.as_str());
    assert_eq!(ls[0]["label"], "bug 1234");
    assert_eq!(ls[0]["containers"], 2);

    let m = json(&d.ok(&["bundle", "inspect", &id]));
    assert_eq!(m["format_version"], 1);
    assert_eq!(m["annotations"]["ticket"], "1234");
    assert!(!m["host"]["kernel"].as_str().unwrap().is_empty());
    assert!(m["host"]["containers"].as_array().unwrap().len() >= 2);
    let c = m["containers"].as_array().unwrap();
    let webm = c.iter().find(|c| c["name"] == "web").unwrap();
    let donem = c.iter().find(|c| c["name"] == "done").unwrap();
    assert_eq!(webm["status"], "running");
    assert_eq!(donem["status"], "exited");
    assert!(donem["processes"].as_array().unwrap().is_empty());
    assert!(webm["inspect"]["Config"]["Env"]
        .to_string()
        .contains("MODE=capture-test"));
    // The listening socket, and the process holding it.
    let listen = webm["sockets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["state"] == "LISTEN" && s["local"].as_str().unwrap().ends_with(":1234"))
        .unwrap_or_else(|| panic!("no listener on 1234: {}", webm["sockets"]));
    let nc = webm["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["cmdline"][0] == "nc")
        .unwrap_or_else(|| panic!("no nc process: {}", webm["processes"]));
    assert_eq!(nc["ns_pid"], 1);
    assert!(nc["environ"].to_string().contains("MODE=capture-test"));
    assert!(nc["fds"].to_string().contains(":1234"), "{}", nc["fds"]);
    assert!(listen["inode"].as_u64().unwrap() > 0);
    assert!(nc["limits"].as_array().unwrap().len() > 5);
    assert!(
        webm["cgroup"]["files"].as_object().unwrap().len() > 1,
        "{}",
        webm["cgroup"]
    );
    assert!(
        !webm["network"]["routes"].as_array().unwrap().is_empty(),
        "{}",
        webm["network"]
    );

    // Files: the writable layer, with a whiteout, a symlink and content.
    let files = json(&d.ok(&["bundle", "files", &id, "web", "--format", "json"]));
    let find = |p: &str| {
        files
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["path"] == p)
            .cloned()
    };
    assert_eq!(find("/data.txt").unwrap()["size"], 7);
    assert_eq!(find("/etc/group").unwrap()["kind"], "whiteout");
    assert_eq!(find("/srv/link").unwrap()["target"], "/data.txt");
    let sub = json(&d.ok(&["bundle", "files", &id, "web", "/srv", "--format", "json"]));
    assert_eq!(sub.as_array().unwrap().len(), 3, "{sub}");
    assert_eq!(d.ok(&["bundle", "cat", &id, "web:/data.txt"]), "secret\n");
    assert_eq!(
        d.ok(&["bundle", "cat", &id[..6], "done:/s.txt"]),
        "finished\n"
    );
    let err = d.fails(&["bundle", "cat", &id, "web:/bin/sh"]);
    assert!(err.contains("not in the captured writable layer"), "{err}");

    // Search: a log line with its container and time; a file path.
    let hits = json(&d.ok(&["bundle", "search", "started-web", "--format", "json"]));
    assert_eq!(hits.as_array().unwrap().len(), 1, "{hits}");
    assert_eq!(hits[0]["container"], "web");
    assert_eq!(hits[0]["text"], "started-web");
    assert!(hits[0]["time"].as_str().unwrap().starts_with("20"));
    let hits = json(&d.ok(&[
        "bundle",
        "search",
        "bye-done",
        "--container",
        "web",
        "--format",
        "json",
    ]));
    assert!(hits.as_array().unwrap().is_empty(), "{hits}");
    let hits = json(&d.ok(&[
        "bundle", "search", "data.txt", "--bundle", &id, "--format", "json",
    ]));
    assert!(hits
        .as_array()
        .unwrap()
        .iter()
        .any(|h| h["kind"] == "path" && h["text"] == "/data.txt"));
    let human = d.ok(&["bundle", "search", "bye-done"]);
    assert!(
        human.contains("done") && human.contains("bye-done"),
        "{human}"
    );

    d.assert_check_clean();
    // Removal frees the bundle's blobs; nothing else is touched.
    d.ok(&["bundle", "rm", &id]);
    assert!(d.ok(&["bundle", "ls", "-q"]).trim().is_empty());
    assert_eq!(blob_count(&d), blobs_before);
    d.fails(&["bundle", "inspect", &id]);
    d.assert_check_clean();
    d.remove_all_containers();
}

#[test]
fn second_capture_stores_only_the_changed_bytes() {
    let d = setup();
    // 8 MiB of random data, then a loop that logs a line per /tick request.
    d.ok(&[
        "run", "-d", "--name", "big", "busybox", "sh", "-c",
        "dd if=/dev/urandom of=/big bs=1M count=8 2>/dev/null; echo ready; \
         while true; do if [ -f /tick ]; then echo tick-$(cat /tick); rm /tick; fi; sleep 0.1; done",
    ]);
    d.wait_log("big", "ready");
    let t = std::time::Instant::now();
    let a = json(&d.ok(&["capture", "big", "--format", "json"]));
    let first_ms = t.elapsed().as_millis();
    let a_new = a["NewBytes"].as_u64().unwrap();
    assert!(a_new >= 8 << 20, "{a}");

    // Change 1 MiB in the middle of the file; add a log line.
    d.ok(&[
        "exec",
        "big",
        "dd",
        "if=/dev/urandom",
        "of=/big",
        "bs=1M",
        "count=1",
        "seek=3",
        "conv=notrunc",
    ]);
    d.ok(&["exec", "big", "sh", "-c", "echo 2 > /tick"]);
    d.wait_log("big", "tick-2");
    let t = std::time::Instant::now();
    let b = json(&d.ok(&["capture", "big", "--format", "json"]));
    let second_ms = t.elapsed().as_millis();
    let b_new = b["NewBytes"].as_u64().unwrap();
    eprintln!(
        "capture figures: first {first_ms} ms ({a_new} new bytes), second {second_ms} ms ({b_new} new bytes, daemon {} ms)",
        b["DurationMs"]
    );
    assert!(b_new >= 1 << 20, "{b}");
    assert!(
        b_new < (1 << 20) + (256 << 10),
        "second capture stored {b_new} bytes: {b}"
    );

    // Unchanged files came from the stat cache: a third capture reads nothing.
    let c = json(&d.ok(&["capture", "big", "--format", "json"]));
    assert_eq!(c["Containers"][0]["FilesRead"], 0, "{c}");
    assert!(c["NewBytes"].as_u64().unwrap() < 64 << 10, "{c}");

    let (ida, idb) = (a["Id"].as_str().unwrap(), b["Id"].as_str().unwrap());
    // A line held by all three bundles is one hit naming the newest.
    let hits = json(&d.ok(&["bundle", "search", "ready", "--format", "json"]));
    assert_eq!(hits.as_array().unwrap().len(), 1, "{hits}");
    assert_eq!(hits[0]["bundle"], c["Id"]);
    assert_eq!(hits[0]["bundles"].as_array().unwrap().len(), 3, "{hits}");
    let diff = json(&d.ok(&["bundle", "diff", ida, idb, "--format", "json"]));
    let ct = &diff["containers"][0];
    let changed = ct["files"]["changed"].as_array().unwrap();
    assert!(
        changed
            .iter()
            .any(|f| f["path"] == "/big" && f["size_b"] == 8 << 20),
        "{diff}"
    );
    assert!(
        ct["files"]["added"].as_array().unwrap().is_empty(),
        "{diff}"
    );
    let lines = ct["new_log_lines"].as_array().unwrap();
    assert_eq!(lines.len(), 1, "{diff}");
    assert_eq!(lines[0]["line"], "tick-2");
    let human = d.ok(&["bundle", "diff", ida, idb]);
    assert!(
        human.contains("C /big") && human.contains("log + ") && human.contains("tick-2"),
        "{human}"
    );

    // Removing the first bundle keeps every chunk the others still use.
    d.ok(&["bundle", "rm", ida]);
    let cat = std::process::Command::new(common::amber_bin())
        .args(["-H", &d.host(), "bundle", "cat", idb, "big:/big"])
        .output()
        .unwrap();
    assert!(cat.status.success());
    assert_eq!(cat.stdout.len(), 8 << 20);
    d.ok(&["bundle", "prune"]);
    assert!(d.ok(&["bundle", "ls", "-q"]).trim().is_empty());
    d.assert_check_clean();
    d.remove_all_containers();
}

#[test]
fn bad_capture_requests_fail_cleanly() {
    let d = setup();
    let err = d.fails(&["capture", "nonexistent-container"]);
    assert!(err.contains("No such container"), "{err}");
    let err = d.fails(&["capture"]);
    assert!(err.contains("--all"), "{err}");
    let err = d.fails(&["capture", "--all"]);
    assert!(err.contains("no containers"), "{err}");
    let err = d.fails(&["bundle", "inspect", "b-000000000000"]);
    assert!(err.contains("no such bundle"), "{err}");
    let err = d.fails(&["capture", "x", "--annotate", "novalue"]);
    assert!(err.contains("KEY=VALUE"), "{err}");
    assert!(d.ok(&["bundle", "ls", "-q"]).trim().is_empty());
    d.assert_check_clean();
}

#[test]
fn restore_recreates_files_env_and_log() {
    let d = setup();
    d.ok(&[
        "run", "-d", "--name", "app", "-e", "APP_MODE=restored", "busybox", "sh", "-c",
        "echo hello-app; echo state-1 > /state.txt; mkdir -p /d; ln -s /state.txt /d/l; rm /etc/group; \
         while true; do sleep 0.1; done",
    ]);
    d.wait_log("app", "hello-app");
    d.ok(&[
        "exec",
        "app",
        "sh",
        "-c",
        "echo from-exec > /exec.txt; chmod 600 /exec.txt; mkfifo /pipe",
    ]);
    d.ok(&[
        "run",
        "--name",
        "stopped",
        "busybox",
        "sh",
        "-c",
        "echo s > /s.txt",
    ]);
    let id = d.ok(&["capture", "app", "stopped"]).trim().to_string();

    let err = d.fails(&["restore", &id]);
    assert!(
        err.contains("already in use") && err.contains("--name-suffix"),
        "{err}"
    );
    let err = d.fails(&["restore", &id, "nosuch"]);
    assert!(err.contains("has no container nosuch"), "{err}");

    let out = d.ok(&["restore", &id, "--name-suffix", "-r"]);
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        ["app-r", "stopped-r"]
    );
    let st = json(&d.ok(&["inspect", "app-r"]));
    assert_eq!(st[0]["State"]["Status"], "running");
    assert!(st[0]["Config"]["Env"]
        .to_string()
        .contains("APP_MODE=restored"));
    let stopped = json(&d.ok(&["inspect", "stopped-r"]));
    assert_eq!(stopped[0]["State"]["Status"], "created");
    assert_eq!(d.ok(&["exec", "app-r", "cat", "/exec.txt"]), "from-exec\n");
    assert_eq!(
        d.ok(&["exec", "app-r", "stat", "-c", "%a", "/exec.txt"])
            .trim(),
        "600"
    );
    assert_eq!(
        d.ok(&["exec", "app-r", "readlink", "/d/l"]).trim(),
        "/state.txt"
    );
    assert_eq!(
        d.ok(&["exec", "app-r", "stat", "-c", "%F", "/pipe"]).trim(),
        "fifo"
    );
    let gone = d.amber(&["exec", "app-r", "cat", "/etc/group"]);
    assert!(!gone.status.success(), "the whiteout was not restored");
    // Log history: the captured line, then the restarted command's.
    let logs = d.ok(&["logs", "app-r"]);
    assert_eq!(logs.matches("hello-app").count(), 2, "{logs}");
    let diff = d.ok(&["diff", "stopped-r"]);
    assert!(diff.contains("A /s.txt"), "{diff}");

    // --replace takes the names over.
    let old = d.ok(&["inspect", "-f", "{{.Id}}", "app"]);
    d.ok(&["restore", &id, "--replace", "app"]);
    let new = d.ok(&["inspect", "-f", "{{.Id}}", "app"]);
    assert_ne!(old, new);
    assert_eq!(d.ok(&["exec", "app", "cat", "/exec.txt"]), "from-exec\n");
    d.assert_check_clean();
    d.remove_all_containers();
}

#[test]
fn baseline_and_rollback() {
    let d = setup();
    let lp = "while true; do sleep 0.1; done";
    d.ok(&[
        "run",
        "-d",
        "--name",
        "w1",
        "busybox",
        "sh",
        "-c",
        &format!("echo base > /base.txt; echo up-w1; {lp}"),
    ]);
    d.ok(&["run", "-d", "--name", "w2", "busybox", "sh", "-c", lp]);
    d.wait_log("w1", "up-w1");
    let v = json(&d.ok(&[
        "baseline", "create", "clean", "w1", "w2", "--format", "json",
    ]));
    let bid = v["Id"].as_str().unwrap().to_string();
    let w1 = d.ok(&["inspect", "-f", "{{.Id}}", "w1"]).trim().to_string();
    let prepared = d
        .root()
        .join("containers")
        .join(&w1)
        .join(format!("baseline-{bid}"))
        .join("upper");
    assert!(
        prepared.join("base.txt").is_file(),
        "rollback copy not prepared"
    );
    let err = d.fails(&["baseline", "create", "clean", "w1"]);
    assert!(err.contains("already exists"), "{err}");

    // Dirty the scene: a new file, a deleted image file, a removed and an added container.
    d.ok(&[
        "exec",
        "w1",
        "sh",
        "-c",
        "echo dirty > /dirty.txt; rm /base.txt; rm /bin/ls",
    ]);
    d.ok(&["rm", "-f", "w2"]);
    d.ok(&["run", "-d", "--name", "late", "busybox", "sh", "-c", lp]);

    let r = json(&d.ok(&["rollback", "clean", "--format", "json"]));
    eprintln!("rollback of 2 containers: {} ms", r["RollbackMs"]);
    assert_eq!(r["Reset"], serde_json::json!(["w1"]));
    assert_eq!(r["Restored"], serde_json::json!(["w2"]));
    assert_eq!(d.ok(&["exec", "w1", "cat", "/base.txt"]), "base\n");
    assert!(!d
        .amber(&["exec", "w1", "cat", "/dirty.txt"])
        .status
        .success());
    d.ok(&["exec", "w1", "ls", "/"]);
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.State.Status}}", "w2"]).trim(),
        "running"
    );
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.Id}}", "w1"]).trim(),
        w1,
        "w1 was recreated, not reset"
    );
    assert!(
        prepared.join("base.txt").is_file(),
        "the next rollback copy was not prepared"
    );
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.State.Status}}", "late"]).trim(),
        "running"
    );
    // Twice in a row works, and --prune removes what came after.
    let r = json(&d.ok(&["rollback", "clean", "--prune", "--format", "json"]));
    assert_eq!(r["Removed"], serde_json::json!(["late"]));
    // The restored w2 is the baseline's w2 now: reset, not recreated.
    assert_eq!(r["Reset"], serde_json::json!(["w1", "w2"]));
    assert!(r["Restored"].as_array().unwrap().is_empty());
    d.fails(&["inspect", "late"]);
    d.fails(&["rollback", "nosuch"]);
    d.assert_check_clean();
    d.ok(&["bundle", "rm", &bid]);
    assert!(!prepared.exists());
    d.assert_check_clean();
    d.remove_all_containers();
}

#[test]
fn system_check_sees_a_damaged_bundle() {
    let d = setup();
    d.ok(&[
        "run",
        "--name",
        "cc",
        "busybox",
        "sh",
        "-c",
        "echo payload-for-check > /p.txt",
    ]);
    let id = d.ok(&["capture", "cc"]).trim().to_string();
    d.assert_check_clean();
    let files = json(&d.ok(&["bundle", "files", &id, "cc", "/p.txt", "--format", "json"]));
    let digest = files[0]["digest"].as_str().unwrap();
    // Small files are one chunk: the chunk's digest is the file's.
    let blob = d.root().join("blobs/sha256").join(&digest[7..]);
    std::fs::write(&blob, b"tampered").unwrap();
    let out = d.amber(&["system", "check"]);
    assert!(!out.status.success());
    assert!(
        common::stdout(&out).contains("does not match its digest"),
        "{}",
        common::stdout(&out)
    );
    let err = d.fails(&["bundle", "cat", &id, "cc:/p.txt"]);
    assert!(err.contains("does not match"), "{err}");
    d.remove_all_containers();
}

#[test]
fn capture_of_containers_exiting_meanwhile() {
    let d = setup();
    for i in 0..3 {
        let name = format!("brief{i}");
        d.ok(&[
            "run", "-d", "--name", &name, "busybox", "sh", "-c",
            "i=0; while [ $i -lt 200 ]; do echo line-$i; echo $i > /f$i; rm -f /f$((i-1)); i=$((i+1)); done",
        ]);
        let args: &[&str] = if i % 2 == 0 {
            &["capture", "--no-pause", &name]
        } else {
            &["capture", &name]
        };
        let out = d.amber(args);
        // Either a complete bundle or one clear error; never a partial one.
        if out.status.success() {
            let id = common::stdout(&out).trim().to_string();
            d.ok(&["bundle", "inspect", &id]);
        } else {
            assert_eq!(
                common::stderr(&out).trim().lines().count(),
                1,
                "{}",
                common::stderr(&out)
            );
        }
        let state = d.ok(&["inspect", "-f", "{{.State.Paused}}", &name]);
        assert_eq!(state.trim(), "false");
    }
    d.assert_check_clean();
    d.remove_all_containers();
}

/// `run --capture-on-failure`: a container that exits non-zero is captured
/// by the daemon with the reason as the label, even with `--rm`; a
/// successful one and a user stop are not.
#[test]
fn capture_on_failure_is_a_flight_recorder() {
    let d = setup();
    let o = d.amber(&[
        "run",
        "--rm",
        "--capture-on-failure",
        "--name",
        "flaky",
        "busybox",
        "sh",
        "-c",
        "echo about-to-fail > /evidence; echo boom-at-the-end; exit 3",
    ]);
    assert_eq!(o.status.code(), Some(3));
    // `run` returns with the exit; the capture happens as the daemon sees it.
    let mut ls = Value::Null;
    for _ in 0..200 {
        ls = json(&d.ok(&["bundle", "ls", "--format", "json"]));
        if ls.as_array().is_some_and(|a| !a.is_empty()) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let rows = ls.as_array().expect("a bundle was made");
    assert_eq!(rows.len(), 1, "{ls}");
    assert_eq!(
        rows[0]["label"],
        "capture on failure: flaky exited with code 3"
    );
    let id = rows[0]["id"].as_str().unwrap().to_string();
    assert!(d
        .ok(&["bundle", "cat", &id, "flaky:/evidence"])
        .contains("about-to-fail"));
    let hits = d.ok(&["bundle", "search", "boom-at-the-end"]);
    assert!(hits.contains("flaky"), "{hits}");
    // Success and a user stop leave no bundle.
    d.ok(&["run", "--rm", "--capture-on-failure", "busybox", "true"]);
    d.ok(&[
        "run",
        "-d",
        "--capture-on-failure",
        "--name",
        "stopped",
        "busybox",
        "sleep",
        "100",
    ]);
    d.ok(&["stop", "-t", "1", "stopped"]);
    std::thread::sleep(std::time::Duration::from_millis(500));
    let n = json(&d.ok(&["bundle", "ls", "--format", "json"]))
        .as_array()
        .map_or(0, |a| a.len());
    assert_eq!(n, 1);
    d.assert_check_clean();
}
