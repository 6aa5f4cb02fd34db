//! Progress on `capture`, `bundle export` and `bundle import`: shown only
//! when standard output and standard error are terminals (a pty made by
//! util-linux's `script`), never on pipes, never with `-q`; the output
//! contract (the bundle ID on standard output) holds either way.

mod common;

use std::process::{Command, Stdio};

use common::{amber_bin, Daemon};

/// Run `amber -H <d> ARGS` on a pty; returns success and the transcript.
fn on_pty(d: &Daemon, args: &[&str]) -> (bool, String) {
    let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
    let mut cmd = vec![quote(amber_bin()), "-H".into(), quote(&d.host())];
    cmd.extend(args.iter().map(|a| quote(a)));
    let out = Command::new("script")
        .args(["-qec", &cmd.join(" "), "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .expect("script (util-linux)");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn bundle_ids(d: &Daemon) -> Vec<String> {
    let ls = d.ok(&["bundle", "ls", "-q"]);
    ls.lines().map(String::from).collect()
}

#[test]
fn progress_only_on_terminals_and_never_with_quiet() {
    let d = Daemon::start();
    d.import_busybox("busybox");
    d.ok(&[
        "run",
        "-d",
        "--name",
        "prog",
        "busybox",
        "sh",
        "-c",
        "head -c 3000000 /dev/urandom > /big.bin; exec sleep 1000",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let tar = dir.path().join("b.tar");
    let tar_s = tar.to_str().unwrap();

    // Pipes: no progress, the ID alone on standard output.
    let out = d.amber(&["capture", "prog"]);
    assert!(out.status.success());
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(id.starts_with("b-") && !id.contains('\n'), "{id:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("Capturing") && !err.contains('\x1b'), "{err}");
    assert!(err.contains("captured 1 container"), "{err}");
    let out = d.amber(&["capture", "-q", "prog"]);
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A bad --format is refused before anything is captured.
    let before = bundle_ids(&d);
    let err = d.fails(&["capture", "prog", "--format", "xml"]);
    assert!(err.contains("unsupported --format"), "{err}");
    assert_eq!(bundle_ids(&d), before);
    let out = d.amber(&["bundle", "export", &id, "-o", tar_s]);
    assert!(out.status.success() && out.stderr.is_empty() && out.stdout.is_empty());

    // A terminal: a spinner, then the ID; -q: the ID alone.
    let (ok, text) = on_pty(&d, &["capture", "prog"]);
    assert!(ok && text.contains("Capturing prog"), "{text:?}");
    let newest = bundle_ids(&d)[0].clone();
    assert!(text.contains(&newest), "{text:?}");
    let (ok, text) = on_pty(&d, &["capture", "-q", "prog"]);
    assert!(ok, "{text:?}");
    assert_eq!(text.trim(), bundle_ids(&d)[0], "{text:?}");

    // Export and import: a bar on a terminal, none with -q.
    let (ok, text) = on_pty(&d, &["bundle", "export", &id, "-o", tar_s]);
    assert!(ok && text.contains("Exporting"), "{text:?}");
    let (ok, text) = on_pty(&d, &["bundle", "export", "-q", &id, "-o", tar_s]);
    assert!(ok && text.trim().is_empty(), "{text:?}");

    let d2 = Daemon::start();
    let out = d2.amber(&["bundle", "import", tar_s]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), id);
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    d2.ok(&["bundle", "rm", &id]);
    let (ok, text) = on_pty(&d2, &["bundle", "import", tar_s]);
    assert!(
        ok && text.contains("Importing") && text.contains(&id),
        "{text:?}"
    );
    d2.ok(&["bundle", "rm", &id]);
    let (ok, text) = on_pty(&d2, &["bundle", "import", "-q", tar_s]);
    assert!(ok, "{text:?}");
    assert_eq!(text.trim(), id, "{text:?}");
    d2.assert_check_clean();
}
