//! `bundle diff ID` against the live containers: files, config, env,
//! processes, status and new log lines since the capture, matched by ID and
//! else by name; it stores nothing and freezes nothing.

mod common;

use serde_json::Value;

use common::Daemon;

use common::json;

fn container<'v>(v: &'v Value, name: &str) -> &'v Value {
    v["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {v}"))
}

/// Command lines, without the loop's own short sleeps (which come and go).
fn procs(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_string())
        .filter(|p| p != "sleep 0.1")
        .collect()
}

fn paths(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn diff_against_the_live_containers() {
    let d = Daemon::start();
    d.import_busybox("busybox");
    // `web` logs a line each time /tick appears.
    d.ok(&[
        "run", "-d", "--name", "web", "busybox", "sh", "-c",
        "echo old > /change.txt; echo x > /gone.txt; echo same > /same.txt; echo ready; \
         i=0; while true; do if [ -f /tick ]; then rm /tick; echo tick-$i; i=$((i+1)); fi; sleep 0.1; done",
    ]);
    d.ok(&[
        "run", "-d", "--name", "again", "-e", "MODE=one", "busybox", "sleep", "1000",
    ]);
    d.ok(&["create", "--name", "doomed", "busybox", "true"]);
    d.wait_log("web", "ready");
    let id = d
        .ok(&["capture", "web", "again", "doomed"])
        .trim()
        .to_string();

    // Nothing changed yet: no file, env or log difference.
    let same = json(&d.ok(&["bundle", "diff", &id, "--format", "json"]));
    assert_eq!(same["b"], "live");
    let web = container(&same, "web");
    for k in ["added", "removed", "changed"] {
        assert!(web["files"][k].as_array().unwrap().is_empty(), "{web}");
    }
    assert!(web["new_log_lines"].as_array().unwrap().is_empty(), "{web}");
    assert!(procs(&web["processes"]["appeared"]).is_empty(), "{web}");

    let blobs = d.entries("blobs/sha256").len();
    let bundles = d.ok(&["bundle", "ls", "-q"]);

    d.ok(&[
        "exec",
        "web",
        "sh",
        "-c",
        "echo newer-content > /change.txt; rm /gone.txt; echo n > /new.txt; touch /tick",
    ]);
    d.ok(&["exec", "-d", "web", "sleep", "777"]);
    d.wait_log("web", "tick-0");
    d.ok(&["rm", "-f", "again", "doomed"]);
    d.ok(&[
        "run", "-d", "--name", "again", "-e", "MODE=two", "busybox", "sleep", "999",
    ]);

    let v = json(&d.ok(&["bundle", "diff", &id, "--format", "json"]));
    assert_eq!(v["a"], id.as_str());
    let web = container(&v, "web");
    assert_eq!(web["change"], "changed");
    assert_eq!(paths(&web["files"]["added"]), ["/new.txt"], "{web}");
    assert_eq!(paths(&web["files"]["removed"]), ["/gone.txt"], "{web}");
    assert_eq!(web["files"]["removed"][0]["size"], 2);
    let changed = paths(&web["files"]["changed"]);
    assert!(changed.contains(&"/change.txt".to_string()), "{web}");
    assert!(!changed.contains(&"/same.txt".to_string()), "{web}");
    let c = web["files"]["changed"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "/change.txt")
        .unwrap();
    assert_eq!(
        (c["size_a"].as_u64(), c["size_b"].as_u64()),
        (Some(4), Some(14))
    );
    let lines: Vec<&str> = web["new_log_lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["line"].as_str().unwrap())
        .collect();
    assert_eq!(lines, ["tick-0"], "{web}");
    assert_eq!(procs(&web["processes"]["appeared"]), ["sleep 777"], "{web}");

    // Recreated under the same name: matched by name, config and env differ.
    let again = container(&v, "again");
    assert!(again["recreated"]["b"].is_string(), "{again}");
    assert_eq!(again["env"]["added"], serde_json::json!(["MODE=two"]));
    assert_eq!(again["env"]["removed"], serde_json::json!(["MODE=one"]));
    assert!(again["config"].to_string().contains("Cmd"), "{again}");
    assert_eq!(
        again["processes"]["appeared"],
        serde_json::json!(["sleep 999"])
    );
    assert_eq!(container(&v, "doomed")["change"], "removed");

    // The human form.
    let text = d.ok(&["bundle", "diff", &id]);
    for want in [
        "A /new.txt (2 bytes)",
        "D /gone.txt (2 bytes)",
        "C /change.txt (4 -> 14 bytes)",
        "process + sleep 777",
        "tick-0",
        "env + MODE=two",
        "container doomed: no longer exists",
        "recreated",
    ] {
        assert!(text.contains(want), "no {want:?} in:\n{text}");
    }

    // Nothing stored, nothing frozen, nothing left.
    assert_eq!(d.entries("blobs/sha256").len(), blobs);
    assert_eq!(d.ok(&["bundle", "ls", "-q"]), bundles);
    assert!(d.entries("tmp").is_empty(), "{:?}", d.entries("tmp"));
    let state = json(&d.ok(&["inspect", "-f", "{{json .State}}", "web"]));
    assert_eq!(
        (state["Running"].as_bool(), state["Paused"].as_bool()),
        (Some(true), Some(false))
    );
    d.assert_check_clean();

    // Bad input: one line, non-zero.
    let err = d.fails(&["bundle", "diff", "b-nosuch"]);
    assert!(err.contains("no such bundle"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(d
        .fails(&["bundle", "diff", &id, "--format", "xml"])
        .contains("--format"));
    // The API: live=1 instead of b, not both, not neither.
    let get = |query: &str| {
        let out = std::process::Command::new("curl")
            .args(["-s", "-w", "\n%{http_code}", "--unix-socket"])
            .arg(d.socket())
            .arg(format!("http://amber/amber/v1/bundles/diff?{query}"))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let live = get(&format!("a={id}&live=1"));
    assert!(
        live.ends_with("\n200") && live.contains("\"live\""),
        "{live}"
    );
    let both = get(&format!("a={id}&b={id}&live=1"));
    assert!(
        both.ends_with("\n400") && both.contains("not both"),
        "{both}"
    );
    let neither = get(&format!("a={id}"));
    assert!(
        neither.ends_with("\n400") && neither.contains("missing query parameter b"),
        "{neither}"
    );
}
