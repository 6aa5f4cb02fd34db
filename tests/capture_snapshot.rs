//! The version 1 reference bundles in snapshots/v1 (made by
//! snapshots/v1/make.sh) still import, list, read and diff.

mod common;

use std::path::PathBuf;

use serde_json::Value;

use common::Daemon;

fn snapshot(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("snapshots/v1")
        .join(name)
        .display()
        .to_string()
}

#[test]
fn version_1_reference_bundles_still_load_and_diff() {
    let ids = std::fs::read_to_string(snapshot("ids")).unwrap();
    let ids: Vec<&str> = ids.split_whitespace().collect();
    let d = Daemon::start();
    assert_eq!(
        d.ok(&["bundle", "import", &snapshot("a.tar")]).trim(),
        ids[0]
    );
    assert_eq!(
        d.ok(&["bundle", "import", &snapshot("b.tar")]).trim(),
        ids[1]
    );
    let ls: Value = serde_json::from_str(&d.ok(&["bundle", "ls", "--format", "json"])).unwrap();
    assert_eq!(ls.as_array().unwrap().len(), 2);
    let m: Value = serde_json::from_str(&d.ok(&["bundle", "inspect", ids[0]])).unwrap();
    assert_eq!(m["format_version"], 1);
    assert_eq!(m["annotations"]["format"], "1");
    assert_eq!(
        d.ok(&["bundle", "cat", ids[0], "ref:/etc/ref.conf"]),
        "v1\n"
    );
    assert_eq!(
        d.ok(&["bundle", "cat", ids[1], "ref:/srv/runs.txt"]),
        "run\nrun\n"
    );
    let files: Value =
        serde_json::from_str(&d.ok(&["bundle", "files", ids[0], "ref", "--format", "json"]))
            .unwrap();
    let kinds: Vec<(&str, &str)> = files
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["path"].as_str().unwrap(), f["kind"].as_str().unwrap()))
        .collect();
    assert!(kinds.contains(&("/etc/group", "whiteout")), "{kinds:?}");
    assert!(kinds.contains(&("/srv/data/link", "symlink")), "{kinds:?}");
    let diff: Value =
        serde_json::from_str(&d.ok(&["bundle", "diff", ids[0], ids[1], "--format", "json"]))
            .unwrap();
    let c = &diff["containers"][0];
    assert!(
        c["files"]["changed"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["path"] == "/srv/runs.txt"),
        "{diff}"
    );
    assert_eq!(c["new_log_lines"].as_array().unwrap().len(), 1, "{diff}");
    let hits: Value = serde_json::from_str(&d.ok(&[
        "bundle",
        "search",
        "reference-line-one",
        "--format",
        "json",
    ]))
    .unwrap();
    assert_eq!(hits.as_array().unwrap().len(), 2, "{hits}");
    // The image is not in this store: restore says so and changes nothing.
    let err = d.fails(&["restore", ids[0]]);
    assert!(err.contains("pull or load it"), "{err}");
    d.assert_check_clean();
}
