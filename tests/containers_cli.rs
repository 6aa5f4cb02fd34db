//! End to end: the container commands of the `amber` CLI (run, ps, exec,
//! logs, lifecycle, rm, rename, wait, inspect, stdin and an interactive
//! tty) against a real `amber daemon` on a temporary root. Every test
//! removes its containers, even when it fails (see `Cleanup`).

mod common;

use std::io::{Read, Write};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{amber_bin, stderr, stdout, Daemon};
use serde_json::Value;

/// Removes every container of the daemon on drop (before the daemon stops).
struct Cleanup<'a>(&'a Daemon);

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let ids = stdout(&self.0.amber(&["ps", "-a", "-q", "--no-trunc"]));
        let ids: Vec<&str> = ids.split_whitespace().collect();
        if !ids.is_empty() {
            let mut args = vec!["rm", "-f"];
            args.extend(ids);
            self.0.amber(&args);
        }
    }
}

fn setup() -> Daemon {
    let d = Daemon::start();
    d.import_busybox("busybox");
    d
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn status(d: &Daemon, name: &str) -> String {
    d.ok(&["inspect", "--format", "{{.State.Status}}", name])
        .trim()
        .to_string()
}

fn with_stdin(d: &Daemon, args: &[&str], input: &[u8]) -> Output {
    let mut child = Command::new(amber_bin())
        .arg("-H")
        .arg(d.host())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut sin = child.stdin.take().unwrap();
    sin.write_all(input).unwrap();
    drop(sin);
    child.wait_with_output().unwrap()
}

#[test]
fn run_output_and_exit_codes() {
    let d = setup();
    let _c = Cleanup(&d);
    let o = d.amber(&["run", "--rm", "busybox", "echo", "hi"]);
    assert_eq!(
        (code(&o), stdout(&o).as_str()),
        (0, "hi\n"),
        "{}",
        stderr(&o)
    );

    let o = d.amber(&[
        "run",
        "busybox",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert_eq!(stdout(&o), "out\n");
    assert_eq!(stderr(&o), "err\n");

    let o = d.amber(&["run", "--rm", "busybox", "no-such-command"]);
    assert_eq!(code(&o), 127, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("executable file not found"),
        "{}",
        stderr(&o)
    );

    let o = d.amber(&["run", "--rm", "nope"]);
    assert_eq!(code(&o), 125);
    let err = stderr(&o);
    assert!(
        err.starts_with("Unable to find image 'nope:latest' locally\n"),
        "{err}"
    );
    assert!(err.contains("Error response from daemon:"), "{err}");

    for bad in [
        &["run", "-d", "-a", "stdout", "busybox", "true"][..],
        &["run", "--rm", "--restart", "always", "busybox", "true"][..],
    ] {
        assert_eq!(code(&d.amber(bad)), 125, "{bad:?}");
    }
    // --rm removed its containers; only the `exit 3` one is left.
    assert_eq!(d.ok(&["ps", "-a", "-q"]).lines().count(), 1);

    // A name in use is the engine's error: 125.
    d.ok(&["create", "--name", "dup", "busybox", "true"]);
    let o = d.amber(&["run", "--name", "dup", "busybox", "true"]);
    assert_eq!(code(&o), 125, "{}", stderr(&o));
    assert!(
        stderr(&o).starts_with("Error response from daemon:"),
        "{}",
        stderr(&o)
    );

    // Unknown containers: one line, exit 1.
    for cmd in ["stop", "start", "kill", "rm", "wait", "logs", "pause"] {
        let o = d.amber(&[cmd, "ghost"]);
        assert_eq!(code(&o), 1, "{cmd}");
        let err = stderr(&o);
        assert!(
            err.contains("No such container: ghost") && err.lines().count() <= 2,
            "{cmd}: {err}"
        );
    }
}

#[test]
fn detached_lifecycle_as_inspect_sees_it() {
    let d = setup();
    let _c = Cleanup(&d);
    let id = d.ok(&["run", "-d", "--name", "web", "busybox", "sleep", "1000"]);
    let id = id.trim();
    assert_eq!(id.len(), 64, "{id}");

    let rows: Vec<Value> = d
        .ok(&["ps", "--format", "json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["Names"], "web");
    assert_eq!(rows[0]["ID"], id[..12]);
    assert_eq!(rows[0]["State"], "running");
    assert_eq!(rows[0]["Command"], "\"sleep 1000\"");
    assert_eq!(status(&d, "web"), "running");
    let table = d.ok(&["ps"]);
    assert!(table.starts_with("CONTAINER ID   IMAGE"), "{table}");
    let custom = d.ok(&["ps", "--format", "table {{.Names}}\\t{{.State}}"]);
    assert_eq!(custom, "NAMES   STATE\nweb     running\n");

    assert_eq!(d.ok(&["pause", "web"]), "web\n");
    assert_eq!(status(&d, "web"), "paused");
    d.ok(&["unpause", "web"]);
    assert_eq!(status(&d, "web"), "running");
    d.ok(&["stop", "-t", "1", "web"]);
    assert_eq!(status(&d, "web"), "exited");
    d.ok(&["start", "web"]);
    assert_eq!(status(&d, "web"), "running");
    d.ok(&["restart", "-t", "1", "web"]);
    assert_eq!(status(&d, "web"), "running");

    let err = d.fails(&["rm", "web"]);
    assert!(
        err.starts_with("Error response from daemon: You cannot remove a running container")
            && err.lines().count() == 1,
        "{err}"
    );
    d.ok(&["kill", "web"]);
    assert_eq!(d.ok(&["wait", "web"]).trim(), "137");
    assert_eq!(status(&d, "web"), "exited");
    d.ok(&["start", "web"]);
    assert_eq!(d.ok(&["rm", "-f", "web"]), "web\n");
    assert_eq!(d.ok(&["ps", "-a", "-q"]), "");
}

#[test]
fn exec_and_logs() {
    let d = setup();
    let _c = Cleanup(&d);
    d.ok(&[
        "run",
        "-d",
        "--name",
        "lg",
        "busybox",
        "sh",
        "-c",
        "echo one; echo two; sleep 1000",
    ]);
    let o = d.amber(&["exec", "lg", "sh", "-c", "echo inside; exit 4"]);
    assert_eq!(
        (code(&o), stdout(&o).as_str()),
        (4, "inside\n"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        d.ok(&[
            "exec",
            "-e",
            "X=1",
            "-w",
            "/tmp",
            "lg",
            "sh",
            "-c",
            "echo $X; pwd"
        ]),
        "1\n/tmp\n"
    );

    let deadline = Instant::now() + Duration::from_secs(10);
    while d.ok(&["logs", "lg"]) != "one\ntwo\n" && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(d.ok(&["logs", "lg"]), "one\ntwo\n");
    assert_eq!(d.ok(&["logs", "--tail", "1", "lg"]), "two\n");
    d.ok(&[
        "run",
        "-d",
        "--name",
        "later",
        "busybox",
        "sh",
        "-c",
        "echo a; sleep 1; echo b",
    ]);
    assert_eq!(d.ok(&["logs", "-f", "later"]), "a\nb\n");
    let ts = d.ok(&["logs", "-t", "lg"]);
    assert!(ts.lines().all(|l| l.contains("Z ")), "{ts}");

    d.ok(&["kill", "lg"]);
    d.ok(&["wait", "lg"]);
    let o = d.amber(&["exec", "lg", "true"]);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).starts_with("Error response from daemon:"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn rename_wait_and_status_filter() {
    let d = setup();
    let _c = Cleanup(&d);
    let o = d.amber(&["run", "--name", "first", "busybox", "sh", "-c", "exit 7"]);
    assert_eq!(code(&o), 7);
    d.ok(&["run", "-d", "--name", "up", "busybox", "sleep", "1000"]);
    d.ok(&["rename", "first", "second"]);
    assert_eq!(d.ok(&["wait", "second"]).trim(), "7");
    let id = d.ok(&["inspect", "--format", "{{.Id}}", "second"]);
    let exited = d.ok(&["ps", "-a", "-f", "status=exited", "-q"]);
    assert_eq!(exited.trim(), &id.trim()[..12]);
    assert!(d
        .fails(&["inspect", "first"])
        .contains("No such object: first"));
    let names = d.ok(&["container", "ls", "-a", "--format", "{{.Names}}"]);
    let mut names: Vec<&str> = names.lines().collect();
    names.sort();
    assert_eq!(names, ["second", "up"]);
}

#[test]
fn env_workdir_user_and_labels_inside() {
    let d = setup();
    let _c = Cleanup(&d);
    let out = d.ok(&[
        "run",
        "--rm",
        "-e",
        "FOO=bar",
        "-w",
        "/tmp",
        "-u",
        "tester",
        "busybox",
        "sh",
        "-c",
        "echo $FOO; pwd; id -u",
    ]);
    assert_eq!(out, "bar\n/tmp\n1000\n");
    d.ok(&[
        "create", "--name", "lab", "-l", "team=qa", "--memory", "64m", "busybox", "true",
    ]);
    let v: Value = serde_json::from_str(&d.ok(&["container", "inspect", "lab"])).unwrap();
    assert_eq!(v[0]["Config"]["Labels"]["team"], "qa");
    assert_eq!(v[0]["HostConfig"]["Memory"], 64 << 20);
    // `inspect` finds images too; `--type` restricts it.
    assert!(d
        .ok(&["inspect", "--format", "{{.Id}}", "busybox"])
        .starts_with("sha256:"));
    d.fails(&["inspect", "--type", "image", "lab"]);
}

#[test]
fn run_interactive_with_piped_stdin() {
    let d = setup();
    let _c = Cleanup(&d);
    let o = with_stdin(&d, &["run", "-i", "--rm", "busybox", "cat"], b"hello\n");
    assert_eq!(
        (code(&o), stdout(&o).as_str()),
        (0, "hello\n"),
        "{}",
        stderr(&o)
    );
    d.ok(&["run", "-d", "--name", "ex", "busybox", "sleep", "1000"]);
    let o = with_stdin(&d, &["exec", "-i", "ex", "wc", "-c"], b"12345");
    assert_eq!(stdout(&o).trim(), "5", "{}", stderr(&o));
}

/// `amber` on a pseudo-terminal, driven as a user would.
struct PtySession {
    child: std::process::Child,
    master: std::fs::File,
    rx: std::sync::mpsc::Receiver<Vec<u8>>,
    seen: Vec<u8>,
}

impl PtySession {
    fn spawn(d: &Daemon, args: &[&str]) -> PtySession {
        let pty = nix::pty::openpty(None, None).unwrap();
        let slave = std::fs::File::from(pty.slave);
        let child = Command::new(amber_bin())
            .arg("-H")
            .arg(d.host())
            .args(args)
            .stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave))
            .spawn()
            .unwrap();
        let master = std::fs::File::from(pty.master);
        let mut reader = master.try_clone().unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        PtySession {
            child,
            master,
            rx,
            seen: Vec::new(),
        }
    }

    fn read_until(&mut self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !String::from_utf8_lossy(&self.seen).contains(needle) {
            assert!(
                Instant::now() < deadline,
                "no {needle:?} in {:?}",
                String::from_utf8_lossy(&self.seen)
            );
            if let Ok(chunk) = self.rx.recv_timeout(Duration::from_millis(100)) {
                self.seen.extend(chunk);
            }
        }
    }

    fn write(&mut self, bytes: &[u8]) {
        self.master.write_all(bytes).unwrap();
    }

    fn wait(&mut self) -> Option<i32> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st.code();
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "amber did not exit: {:?}",
                    String::from_utf8_lossy(&self.seen)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn run_it_is_an_interactive_shell() {
    let d = setup();
    let _c = Cleanup(&d);
    let mut s = PtySession::spawn(&d, &["run", "-it", "--rm", "busybox", "sh"]);
    s.read_until("# ");
    s.write(b"echo $((6*7))\n");
    s.read_until("42");
    s.write(b"exit 5\n");
    assert_eq!(s.wait(), Some(5));
    assert_eq!(d.ok(&["ps", "-a", "-q"]), "", "--rm removed it");
}

#[test]
fn detach_keys_and_exec_it() {
    let d = setup();
    let _c = Cleanup(&d);
    let mut s = PtySession::spawn(&d, &["run", "-it", "--name", "dt", "busybox", "sh"]);
    s.read_until("# ");
    // ctrl-p ctrl-q: the client leaves with 0. (Whether the shell survives
    // is the daemon's business: it sends EOT to a tty when a client goes.)
    s.write(&[0x10, 0x11]);
    s.read_until("read escape sequence");
    assert_eq!(s.wait(), Some(0));

    d.ok(&["run", "-d", "--name", "ex", "busybox", "sleep", "1000"]);
    let mut s = PtySession::spawn(&d, &["exec", "-it", "ex", "sh"]);
    s.read_until("# ");
    s.write(b"echo $((7*6)); exit 3\n");
    s.read_until("42");
    assert_eq!(s.wait(), Some(3));
}

/// Without a tty, `run` forwards the signals it gets to the container.
#[test]
fn run_proxies_signals() {
    let d = setup();
    let _c = Cleanup(&d);
    let mut child = Command::new(amber_bin())
        .arg("-H")
        .arg(d.host())
        .args([
            "run",
            "--name",
            "sp",
            "busybox",
            "sh",
            "-c",
            "trap 'exit 9' TERM; echo ready; while true; do sleep 0.1; done",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut buf = [0u8; 6];
    out.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"ready\n");
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(20);
    let st = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < deadline, "amber run did not exit");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(st.code(), Some(9));
}

#[test]
fn start_attach_top_stats_and_prune() {
    let d = setup();
    let _c = Cleanup(&d);
    d.ok(&[
        "create",
        "--name",
        "cr",
        "busybox",
        "sh",
        "-c",
        "echo created; exit 2",
    ]);
    assert_eq!(status(&d, "cr"), "created");
    let o = d.amber(&["start", "-a", "cr"]);
    assert_eq!(
        (code(&o), stdout(&o).as_str()),
        (2, "created\n"),
        "{}",
        stderr(&o)
    );

    d.ok(&["run", "-d", "--name", "busy", "busybox", "sleep", "1000"]);
    let top = d.ok(&["top", "busy"]);
    assert!(top.lines().next().unwrap().contains("PID"), "{top}");
    assert!(top.contains("sleep 1000"), "{top}");
    let stats = d.ok(&["stats", "--no-stream", "busy"]);
    let mut lines = stats.lines();
    assert!(
        lines.next().unwrap().starts_with("CONTAINER ID   NAME"),
        "{stats}"
    );
    assert!(lines.next().unwrap().contains(" busy "), "{stats}");

    let pruned = d.ok(&["container", "prune", "-f"]);
    assert!(pruned.starts_with("Deleted Containers:\n"), "{pruned}");
    let left = d.ok(&["ps", "-a", "--format", "{{.Names}}"]);
    assert_eq!(left, "busy\n");
}

/// `cp` both ways and `diff`, with Docker's placement rules. Skipped when
/// the daemon lacks the archive endpoints (they land on another branch).
#[test]
fn cp_and_diff() {
    let d = setup();
    let _c = Cleanup(&d);
    d.ok(&[
        "run",
        "-d",
        "--name",
        "files",
        "busybox",
        "sh",
        "-c",
        "mkdir -p /data/sub; echo a > /data/a; echo b > /data/sub/b; rm /etc/amber-release; sleep 1000",
    ]);
    let deadline = Instant::now() + Duration::from_secs(10);
    let diff = loop {
        let o = d.amber(&["diff", "files"]);
        if stderr(&o).contains("page not found") {
            eprintln!("skipping: this daemon has no /containers/{{id}}/changes");
            return;
        }
        let out = stdout(&o);
        if out.contains("D /etc/amber-release") || Instant::now() > deadline {
            break out;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    for line in [
        "A /data",
        "A /data/a",
        "A /data/sub/b",
        "C /etc",
        "D /etc/amber-release",
    ] {
        assert!(diff.lines().any(|l| l == line), "{line} not in {diff}");
    }
    let tmp = tempfile::tempdir().unwrap();
    let t = |p: &str| tmp.path().join(p).to_str().unwrap().to_string();
    // Into an existing directory, onto a new name, a directory's contents.
    d.ok(&["cp", "files:/data", &t("")]);
    d.ok(&["cp", "files:/data/a", &t("a2")]);
    d.ok(&["cp", "files:/data/.", &t("contents")]);
    assert_eq!(std::fs::read_to_string(t("data/sub/b")).unwrap(), "b\n");
    assert_eq!(std::fs::read_to_string(t("a2")).unwrap(), "a\n");
    assert_eq!(std::fs::read_to_string(t("contents/sub/b")).unwrap(), "b\n");
    assert!(d
        .fails(&["cp", "files:/data", &t("a2")])
        .contains("directory to a file"));

    std::fs::write(t("host.txt"), "from host\n").unwrap();
    d.ok(&["cp", &t("host.txt"), "files:/data/"]);
    d.ok(&["cp", &t("host.txt"), "files:/data/renamed"]);
    d.ok(&["cp", &t("data"), "files:/copied"]);
    let inside = d.ok(&[
        "exec",
        "files",
        "cat",
        "/data/host.txt",
        "/data/renamed",
        "/copied/sub/b",
    ]);
    assert_eq!(inside, "from host\nfrom host\nb\n");

    // `-` streams a tar.
    let o = d.amber(&["cp", "files:/data/a", "-"]);
    let mut ar = tar::Archive::new(&o.stdout[..]);
    let names: Vec<String> = ar
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    assert_eq!(names, ["a"]);
}
