//! The real `docker` CLI against `amber daemon` for the container commands:
//! run (attached, detached, --rm, exit codes), ps, inspect --format, exec,
//! logs (-f), top, stats, stop/start/restart/kill/pause/unpause/rename/wait,
//! rm -f, cp both ways (with symlink-escape attempts), diff, an interactive
//! `-it` session through a pty, and a daemon kill -9 and restart.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{stderr, stdout, Daemon};

fn docker_ok(d: &Daemon, args: &[&str]) -> String {
    let out = d.docker(args);
    assert!(
        out.status.success(),
        "docker {args:?} failed ({:?}): {}\n{}",
        out.status.code(),
        stderr(&out),
        tail(&d.log())
    );
    stdout(&out)
}

fn tail(s: &str) -> String {
    s.lines()
        .rev()
        .take(20)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect::<Vec<_>>()
        .join("\n")
}

fn code(d: &Daemon, args: &[&str]) -> i32 {
    d.docker(args).status.code().unwrap_or(-1)
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn daemon_with_busybox() -> Daemon {
    let d = Daemon::start();
    d.import_busybox("busybox");
    d
}

#[test]
fn run_exit_codes_and_output() {
    let d = daemon_with_busybox();
    assert_eq!(
        docker_ok(&d, &["run", "--rm", "busybox", "echo", "hi"]),
        "hi\n"
    );
    let out = d.docker(&[
        "run",
        "--name",
        "three",
        "busybox",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(stdout(&out), "out\n");
    assert_eq!(stderr(&out), "err\n");
    let out = d.docker(&["run", "--rm", "busybox", "nosuchcommand"]);
    assert_eq!(out.status.code(), Some(127), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("executable file not found"),
        "{}",
        stderr(&out)
    );
    assert_eq!(code(&d, &["run", "--rm", "busybox", "/etc/passwd"]), 126);
    // --rm removed the containers; the plain one stays, exited.
    let ps = docker_ok(&d, &["ps", "-a", "--format", "{{.Names}} {{.State}}"]);
    assert_eq!(ps.trim(), "three exited");
    let st = docker_ok(
        &d,
        &[
            "inspect",
            "--format",
            "{{.State.Status}} {{.State.ExitCode}}",
            "three",
        ],
    );
    assert_eq!(st.trim(), "exited 3");
    // Env, workdir and user as Docker applies them.
    let out = docker_ok(
        &d,
        &[
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
            "echo $FOO $(pwd) $(id -u)",
        ],
    );
    assert_eq!(out.trim(), "bar /tmp 1000");
    // Piped stdin with -i.
    let mut child = Command::new("docker")
        .env("DOCKER_HOST", d.host())
        .args(["run", "-i", "--rm", "busybox", "cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), b"hello stdin\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello stdin\n");
    // An image a container uses is not removed without -f; with -f it loses
    // its tag but stays for the container.
    let out = d.docker(&["rmi", "busybox"]);
    assert!(
        !out.status.success() && stderr(&out).contains("is using its referenced image"),
        "{}",
        stderr(&out)
    );
    docker_ok(&d, &["rmi", "-f", "busybox"]);
    assert_eq!(
        docker_ok(&d, &["inspect", "-f", "{{.State.ExitCode}}", "three"]).trim(),
        "3"
    );
    assert_eq!(
        docker_ok(&d, &["images", "-q"]).lines().count(),
        1,
        "the untagged image stays"
    );
    docker_ok(&d, &["rm", "three"]);
}

#[test]
fn detached_lifecycle_exec_logs() {
    let d = daemon_with_busybox();
    let id = docker_ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "web",
            "-l",
            "team=qa",
            "busybox",
            "sh",
            "-c",
            "echo started; trap 'exit 0' TERM; while true; do sleep 0.1; done",
        ],
    );
    let id = id.trim();
    assert_eq!(id.len(), 64);
    assert_eq!(
        docker_ok(&d, &["inspect", "-f", "{{.State.Status}}", "web"]).trim(),
        "running"
    );
    assert_eq!(
        docker_ok(&d, &["ps", "-q", "--filter", "label=team=qa"]).trim(),
        &id[..12]
    );
    // exec: output, exit code, env.
    let out = docker_ok(&d, &["exec", "web", "ps"]);
    assert!(out.contains("while true"), "{out}");
    assert_eq!(code(&d, &["exec", "web", "sh", "-c", "exit 5"]), 5);
    assert_eq!(
        docker_ok(&d, &["exec", "-e", "X=1", "web", "sh", "-c", "echo $X"]).trim(),
        "1"
    );
    wait_until("log line", || {
        stdout(&d.docker(&["logs", "web"])).contains("started")
    });
    assert!(docker_ok(&d, &["top", "web"]).contains("while true"));
    let stats = docker_ok(
        &d,
        &[
            "stats",
            "--no-stream",
            "--format",
            "{{.Name}} {{.PIDs}}",
            "web",
        ],
    );
    assert!(stats.starts_with("web "), "{stats}");

    docker_ok(&d, &["pause", "web"]);
    assert_eq!(
        docker_ok(&d, &["inspect", "-f", "{{.State.Status}}", "web"]).trim(),
        "paused"
    );
    docker_ok(&d, &["unpause", "web"]);
    docker_ok(&d, &["stop", "-t", "5", "web"]);
    assert_eq!(
        docker_ok(
            &d,
            &[
                "inspect",
                "-f",
                "{{.State.Status}} {{.State.ExitCode}}",
                "web"
            ]
        )
        .trim(),
        "exited 0"
    );
    docker_ok(&d, &["start", "web"]);
    assert_eq!(
        docker_ok(&d, &["inspect", "-f", "{{.State.Running}}", "web"]).trim(),
        "true"
    );
    docker_ok(&d, &["restart", "-t", "1", "web"]);
    docker_ok(&d, &["rename", "web", "web2"]);
    let out = d.docker(&["rm", "web2"]);
    assert!(
        !out.status.success() && stderr(&out).contains("Stop the container"),
        "{}",
        stderr(&out)
    );
    docker_ok(&d, &["kill", "web2"]);
    assert_eq!(docker_ok(&d, &["wait", "web2"]).trim(), "137");
    // Logs kept across restarts.
    assert_eq!(
        stdout(&d.docker(&["logs", "web2"]))
            .matches("started")
            .count(),
        3
    );
    let out = d.docker(&["exec", "web2", "true"]);
    assert!(
        !out.status.success() && stderr(&out).contains("is not running"),
        "{}",
        stderr(&out)
    );
    docker_ok(&d, &["rm", "web2"]);
    let out = d.docker(&["inspect", "web2"]);
    assert!(!out.status.success());
}

#[test]
fn logs_follow_ends_with_the_container() {
    let d = daemon_with_busybox();
    docker_ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "talker",
            "busybox",
            "sh",
            "-c",
            "for i in 1 2 3; do echo line$i; sleep 0.3; done",
        ],
    );
    let out = Command::new("docker")
        .env("DOCKER_HOST", d.host())
        .args(["logs", "-f", "talker"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "line1\nline2\nline3\n"
    );
    assert_eq!(docker_ok(&d, &["logs", "--tail", "1", "talker"]), "line3\n");
    let ts = docker_ok(&d, &["logs", "-t", "talker"]);
    assert!(ts.lines().all(|l| l.contains("Z line")), "{ts}");
    // start -a of an exited container streams the new run from its start.
    assert_eq!(
        docker_ok(&d, &["start", "-a", "talker"]),
        "line1\nline2\nline3\n"
    );
    // attach to a running container gets what follows and its exit code.
    docker_ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "ticker",
            "busybox",
            "sh",
            "-c",
            "sleep 0.5; echo tick; exit 6",
        ],
    );
    let out = d.docker(&["attach", "ticker"]);
    assert_eq!(stdout(&out), "tick\n");
    assert_eq!(out.status.code(), Some(6));
    docker_ok(&d, &["rm", "talker", "ticker"]);
}

#[test]
fn cp_both_ways_stays_inside_the_container() {
    let d = daemon_with_busybox();
    let outside = d.dir.path().join("host-outside");
    std::fs::create_dir(&outside).unwrap();
    let script = format!(
        "echo inside > /tmp/x; ln -s / /escape; ln -s ../../../.. /up; ln -s {} /out; sleep 1000",
        outside.display()
    );
    docker_ok(
        &d,
        &["run", "-d", "--name", "box", "busybox", "sh", "-c", &script],
    );
    wait_until("setup", || {
        d.docker(&["exec", "box", "test", "-L", "/out"])
            .status
            .success()
    });
    let host = d.dir.path();
    let dst = host.join("x.txt");
    docker_ok(&d, &["cp", "box:/tmp/x", dst.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&dst).unwrap(), "inside\n");
    // Reading through a symlink to / gives the container's file, not the host's.
    let pw = host.join("passwd");
    docker_ok(&d, &["cp", "box:/escape/etc/passwd", pw.to_str().unwrap()]);
    assert!(
        std::fs::read_to_string(&pw)
            .unwrap()
            .contains("tester:x:1000"),
        "got a passwd that is not the container's"
    );
    // Writing through ../../ and absolute symlinks lands inside the container.
    let src = host.join("payload.txt");
    std::fs::write(&src, "payload\n").unwrap();
    docker_ok(&d, &["cp", src.to_str().unwrap(), "box:/up/"]);
    assert_eq!(
        docker_ok(&d, &["exec", "box", "cat", "/payload.txt"]),
        "payload\n"
    );
    assert!(!std::path::Path::new("/payload.txt").exists());
    let _ = d.docker(&["cp", src.to_str().unwrap(), "box:/out/"]);
    assert!(
        std::fs::read_dir(&outside).unwrap().next().is_none(),
        "cp wrote outside the container"
    );
    // A missing parent is an error.
    assert_ne!(
        code(&d, &["cp", src.to_str().unwrap(), "box:/no/such/dir/"]),
        0
    );
    // diff shows the changes.
    let diff = docker_ok(&d, &["diff", "box"]);
    assert!(
        diff.contains("A /payload.txt") && diff.contains("A /tmp/x") && diff.contains("C /tmp"),
        "{diff}"
    );
    // Stopped containers work too.
    docker_ok(&d, &["stop", "-t", "0", "box"]);
    let back = host.join("back.txt");
    docker_ok(&d, &["cp", "box:/payload.txt", back.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&back).unwrap(), "payload\n");
    docker_ok(&d, &["rm", "box"]);
    assert!(
        amber::runtime::host_mounts_under(d.dir.path()).is_empty(),
        "a temporary mount was left"
    );
}

#[test]
fn interactive_tty_session() {
    let d = daemon_with_busybox();
    // Drive `docker run -it` through a real pty with Python's pty module.
    let script = r##"
import os, pty, sys, time, select
pid, fd = pty.fork()
if pid == 0:
    os.execvp("docker", ["docker", "run", "-it", "--rm", "busybox", "sh"])
out = b""
def read_until(token, timeout=15):
    global out
    end = time.time() + timeout
    while token not in out and time.time() < end:
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            try:
                out += os.read(fd, 4096)
            except OSError:
                break
    return token in out
read_until(b"#")
os.write(fd, b"echo $((6*7)); tty\r")
ok = read_until(b"42")
read_until(b"/dev/pts/")
os.write(fd, b"exit 4\r")
_, status = os.waitpid(pid, 0)
print("OK" if ok else "MISSING", os.waitstatus_to_exitcode(status))
print(out.decode(errors="replace"), file=sys.stderr)
"##;
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .env("DOCKER_HOST", d.host())
        .output()
        .unwrap();
    let so = stdout(&out);
    assert!(
        so.starts_with("OK 4"),
        "stdout {so:?}; session:\n{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("/dev/pts/0"), "{}", stderr(&out));
}

#[test]
fn daemon_kill9_and_restart_keeps_containers() {
    let mut d = daemon_with_busybox();
    docker_ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "long",
            "busybox",
            "sh",
            "-c",
            "echo before; sleep 1000",
        ],
    );
    docker_ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "short",
            "busybox",
            "sh",
            "-c",
            "sleep 1; echo done; exit 7",
        ],
    );
    docker_ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "phoenix",
            "--restart",
            "always",
            "busybox",
            "sh",
            "-c",
            "echo up; sleep 1; exit 1",
        ],
    );
    let pid_before = docker_ok(&d, &["inspect", "-f", "{{.State.Pid}}", "long"]);
    d.kill9();
    std::thread::sleep(Duration::from_millis(2500));
    d.spawn();
    // The running container kept running under its shim, same pid.
    assert_eq!(
        docker_ok(
            &d,
            &["inspect", "-f", "{{.State.Status}} {{.State.Pid}}", "long"]
        )
        .trim(),
        format!("running {}", pid_before.trim())
    );
    // The exit that happened while the daemon was down is recorded.
    assert_eq!(
        docker_ok(
            &d,
            &[
                "inspect",
                "-f",
                "{{.State.Status}} {{.State.ExitCode}}",
                "short"
            ]
        )
        .trim(),
        "exited 7"
    );
    assert_eq!(docker_ok(&d, &["logs", "short"]), "done\n");
    // The restart policy applies after the daemon restart.
    wait_until("phoenix restarted", || {
        let n: i64 = docker_ok(&d, &["inspect", "-f", "{{.RestartCount}}", "phoenix"])
            .trim()
            .parse()
            .unwrap_or(0);
        n >= 1
    });
    // The restarted daemon still talks to the old container.
    assert_eq!(
        docker_ok(&d, &["exec", "long", "echo", "again"]).trim(),
        "again"
    );
    docker_ok(&d, &["rm", "-f", "long", "short", "phoenix"]);
}

#[test]
fn many_containers_leave_nothing_behind() {
    let d = daemon_with_busybox();
    let mut ids = Vec::new();
    for i in 0..20 {
        ids.push(
            docker_ok(
                &d,
                &[
                    "run",
                    "-d",
                    "--name",
                    &format!("c{i}"),
                    "busybox",
                    "sleep",
                    "100",
                ],
            )
            .trim()
            .to_string(),
        );
    }
    assert_eq!(docker_ok(&d, &["ps", "-q"]).lines().count(), 20);
    let mut args = vec!["rm", "-f"];
    args.extend(ids.iter().map(String::as_str));
    docker_ok(&d, &args);
    assert!(docker_ok(&d, &["ps", "-aq"]).trim().is_empty());
    wait_until("shims gone", || d.live_shims().is_empty());
    assert!(amber::runtime::host_mounts_under(d.dir.path()).is_empty());
    for cg in d.cgroup_dirs() {
        let children: Vec<_> = std::fs::read_dir(&cg)
            .unwrap()
            .flatten()
            .filter(|e| e.path().is_dir())
            .collect();
        assert!(
            children.is_empty(),
            "cgroups left under {}: {children:?}",
            cg.display()
        );
    }
    assert!(d.entries("containers").is_empty());
}

#[test]
fn docker_python_sdk_containers() {
    let d = daemon_with_busybox();
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/sdk_containers.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(d.host())
        .arg("busybox")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "docker SDK script failed (pip install 'docker>=7,<8'):\n{}{}\n{}",
        stdout(&out),
        stderr(&out),
        tail(&d.log())
    );
}

#[test]
fn run_flags_apply_inside() {
    let d = daemon_with_busybox();
    let run = |args: &[&str]| {
        docker_ok(&d, &[&["run", "--rm"], args].concat())
            .trim()
            .to_string()
    };
    assert_eq!(
        run(&["--hostname", "bugbox", "busybox", "hostname"]),
        "bugbox"
    );
    let mem = "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max";
    assert_eq!(
        run(&["--memory", "64m", "busybox", "sh", "-c", mem]),
        "67108864"
    );
    let pids = "cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max";
    assert_eq!(
        run(&["--pids-limit", "33", "busybox", "sh", "-c", pids]),
        "33"
    );
    assert_eq!(
        run(&[
            "--cap-drop",
            "ALL",
            "busybox",
            "sh",
            "-c",
            "grep CapEff /proc/self/status"
        ]),
        "CapEff:\t0000000000000000"
    );
    assert_eq!(
        run(&["busybox", "sh", "-c", "grep CapEff /proc/self/status"]),
        "CapEff:\t00000000a80425fb"
    );
    let privileged = run(&[
        "--privileged",
        "busybox",
        "sh",
        "-c",
        "grep CapEff /proc/self/status",
    ]);
    assert_ne!(privileged, "CapEff:\t00000000a80425fb");
    assert_eq!(
        run(&["--entrypoint", "echo", "busybox", "via", "entrypoint"]),
        "via entrypoint"
    );
    // on-failure:2 restarts twice, then stays exited.
    docker_ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "flaky",
            "--restart",
            "on-failure:2",
            "busybox",
            "sh",
            "-c",
            "exit 1",
        ],
    );
    wait_until("two restarts", || {
        docker_ok(
            &d,
            &[
                "inspect",
                "-f",
                "{{.RestartCount}} {{.State.Status}}",
                "flaky",
            ],
        )
        .trim()
            == "2 exited"
    });
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(
        docker_ok(&d, &["inspect", "-f", "{{.RestartCount}}", "flaky"]).trim(),
        "2"
    );
    // A taken name is Docker's conflict.
    let out = d.docker(&["create", "--name", "flaky", "busybox", "true"]);
    assert!(
        !out.status.success() && stderr(&out).contains("is already in use"),
        "{}",
        stderr(&out)
    );
    docker_ok(&d, &["rm", "flaky"]);
    let out = d.docker(&["run", "--rm", "nosuchimage"]);
    assert_eq!(out.status.code(), Some(125), "{}", stderr(&out));
}

#[test]
fn docker_commit_history_export() {
    let d = daemon_with_busybox();
    docker_ok(
        &d,
        &["run", "--name", "c1", "busybox", "sh", "-c", "echo x > /x"],
    );
    let id = docker_ok(
        &d,
        &[
            "commit",
            "-m",
            "msg",
            "-c",
            "CMD [\"cat\", \"/x\"]",
            "c1",
            "dsnap:1",
        ],
    );
    assert!(id.trim().starts_with("sha256:"), "{id}");
    assert_eq!(docker_ok(&d, &["run", "--rm", "dsnap:1"]), "x\n");
    let hist = docker_ok(&d, &["history", "--format", "{{.Comment}}", "dsnap:1"]);
    assert_eq!(hist.lines().next(), Some("msg"));
    let out = Command::new("docker")
        .env("DOCKER_HOST", d.host())
        .args(["export", "c1"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let listing = Command::new("tar")
        .arg("t")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut t| {
            std::io::Write::write_all(&mut t.stdin.take().unwrap(), &out.stdout)?;
            t.wait_with_output()
        })
        .unwrap();
    let names = String::from_utf8_lossy(&listing.stdout);
    assert!(
        names.lines().any(|l| l == "./x") && names.lines().any(|l| l == "./bin/busybox"),
        "{names}"
    );
    docker_ok(&d, &["rm", "c1"]);
}
