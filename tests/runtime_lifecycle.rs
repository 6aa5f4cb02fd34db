//! Runtime integration tests, lifecycle: tty and stdin, attach protocol,
//! exec, pause, delete, and the shim outliving its parent. Run as root:
//! `cargo test --test runtime_lifecycle`.

#[path = "runtime_harness/mod.rs"]
mod harness;

use std::time::Duration;

use amber::runtime::{self, ExecOptions, Frame, ProcessConfig, RuntimeError, Status};
use harness::{name, Ctr};

/// Docker's default set; without a device cgroup (v2) CAP_MKNOD is left out.
fn default_capeff() -> String {
    let mask: u64 = if runtime::cgroups::has_device_control() {
        0xa80425fb
    } else {
        0xa80425fb & !(1 << 27)
    };
    format!("CapEff:\t{mask:016x}")
}

#[test]
fn tty_stdin_and_resize() {
    let mut c = Ctr::new(&name("tty"), &["sh"]);
    c.opts.process.tty = true;
    c.opts.process.open_stdin = true;
    c.opts.process.console_size = Some((24, 80));
    runtime::start(&c.opts).unwrap();
    let mut a = runtime::attach(c.dir()).unwrap();
    a.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    a.send(&Frame::Resize { rows: 33, cols: 77 }).unwrap();
    a.send(&Frame::Stdin(
        b"stty size; [ -t 0 ] && echo IS-A-TTY; tty; [ -c /dev/console ] && echo CONSOLE; exit 3\n"
            .to_vec(),
    ))
    .unwrap();
    let got = a.collect().unwrap();
    let out = String::from_utf8_lossy(&got.stdout);
    assert!(out.contains("33 77"), "{out}");
    assert!(out.contains("IS-A-TTY") && out.contains("CONSOLE"), "{out}");
    assert!(out.contains("/dev/pts/0"), "{out}");
    assert_eq!(got.exit, Some((3, false)));
    let st = runtime::wait(c.dir(), Duration::from_secs(10)).unwrap();
    assert_eq!(st.exit_code, Some(3));
    assert!(c.logs().0.contains("33 77"));
}

#[test]
fn stdin_pipe_forwarding() {
    let mut c = Ctr::new(&name("stdin"), &["sh", "-c", "cat; echo eof-seen >&2"]);
    c.opts.process.open_stdin = true;
    runtime::start(&c.opts).unwrap();
    let mut a = runtime::attach(c.dir()).unwrap();
    a.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    a.send(&Frame::Stdin(b"hello\nworld\n".to_vec())).unwrap();
    a.send(&Frame::CloseStdin).unwrap();
    let got = a.collect().unwrap();
    assert_eq!(String::from_utf8_lossy(&got.stdout), "hello\nworld\n");
    assert_eq!(String::from_utf8_lossy(&got.stderr), "eof-seen\n");
    assert_eq!(got.exit, Some((0, false)));
}

#[test]
fn signals_through_the_socket_and_kill() {
    let c = Ctr::sh(
        &name("sig"),
        "trap 'echo got-term; exit 9' TERM; echo ready; while true; do sleep 0.05; done",
    );
    runtime::start(&c.opts).unwrap();
    let mut a = runtime::attach(c.dir()).unwrap();
    a.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    // Wait until the trap is installed.
    while !c.logs().0.contains("ready") {
        std::thread::sleep(Duration::from_millis(10));
    }
    a.send(&Frame::Signal(libc_sigterm())).unwrap();
    let got = a.collect().unwrap();
    assert_eq!(got.exit, Some((9, false)));
    assert!(String::from_utf8_lossy(&got.stdout).contains("got-term"));
    assert!(matches!(
        runtime::kill(c.dir(), runtime::Signal::SIGTERM),
        Err(RuntimeError::WrongState { .. })
    ));
}

fn libc_sigterm() -> i32 {
    runtime::Signal::SIGTERM as i32
}

fn ns_links(pid: i32) -> String {
    ["pid", "net", "mnt", "uts", "ipc", "cgroup"]
        .iter()
        .map(|n| {
            std::fs::read_link(format!("/proc/{pid}/ns/{n}"))
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn exec_collect(c: &Ctr, id: &str, p: ProcessConfig) -> (String, Option<(i32, bool)>) {
    let x = ExecOptions {
        id: id.into(),
        process: p,
        shim_exe: c.opts.shim_exe.clone(),
        ..Default::default()
    };
    runtime::exec(c.dir(), &x).unwrap();
    let mut a = runtime::attach_exec(c.dir(), id).unwrap();
    a.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let got = a.collect().unwrap();
    (
        String::from_utf8_lossy(&got.stdout).into_owned() + &String::from_utf8_lossy(&got.stderr),
        got.exit,
    )
}

#[test]
fn exec_joins_namespaces_cgroup_and_security() {
    let mut c = Ctr::new(&name("exec"), &["sleep", "60"]);
    c.opts.resources.pids_limit = Some(50);
    let started = runtime::start(&c.opts).unwrap();
    let script = "echo ns=$(for n in pid net mnt uts ipc cgroup; do readlink /proc/self/ns/$n; done); \
                  hostname; grep -E 'CapEff|Seccomp:' /proc/self/status; cat /proc/self/cgroup | grep -c pids; echo fds=$(ls /proc/self/fd); ps -o comm | grep -c sleep; exit 5";
    let p = ProcessConfig {
        args: vec!["sh".into(), "-c".into(), script.into()],
        ..Default::default()
    };
    let (out, exit) = exec_collect(&c, "e1", p);
    assert_eq!(exit, Some((5, false)), "{out}");
    assert!(
        out.contains(&format!("ns={}\n", ns_links(started.pid))),
        "{out}"
    );
    assert!(out.contains(&format!("{}-host", c.opts.id)), "{out}");
    assert!(
        out.contains(&default_capeff()) && out.contains("Seccomp:\t2"),
        "{out}"
    );
    assert!(out.contains("fds=0 1 2 3\n"), "{out}");
    assert_eq!(
        runtime::exec_state(c.dir(), "e1").unwrap().exit_code,
        Some(5)
    );

    let tty = ProcessConfig {
        args: vec![
            "sh".into(),
            "-c".into(),
            "stty size; [ -t 0 ] && [ -t 1 ] && echo TTY-OK; tty".into(),
        ],
        tty: true,
        console_size: Some((10, 20)),
        ..Default::default()
    };
    let (out, exit) = exec_collect(&c, "e2", tty);
    assert!(
        out.contains("10 20") && out.contains("TTY-OK") && out.contains("/dev/pts/"),
        "{out}"
    );
    assert_eq!(exit, Some((0, false)));

    let bad = ExecOptions {
        id: "e3".into(),
        process: ProcessConfig {
            args: vec!["nope".into()],
            ..Default::default()
        },
        shim_exe: c.opts.shim_exe.clone(),
        ..Default::default()
    };
    assert!(matches!(
        runtime::exec(c.dir(), &bad),
        Err(RuntimeError::StartFailed { exit_code: 127, .. })
    ));

    let detached = ExecOptions {
        id: "e4".into(),
        process: ProcessConfig {
            args: vec![
                "sh".into(),
                "-c".into(),
                "echo hi > /tmp/detached; exit 4".into(),
            ],
            ..Default::default()
        },
        detach: true,
        shim_exe: c.opts.shim_exe.clone(),
        ..Default::default()
    };
    runtime::exec(c.dir(), &detached).unwrap();
    let t0 = std::time::Instant::now();
    while runtime::exec_state(c.dir(), "e4")
        .unwrap()
        .exit_code
        .is_none()
    {
        assert!(t0.elapsed() < Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        runtime::exec_state(c.dir(), "e4").unwrap().exit_code,
        Some(4)
    );
    // The exec wrote through the container's overlay into its upper dir.
    assert_eq!(
        std::fs::read_to_string(c.opts.upper_dir.join("tmp/detached")).unwrap(),
        "hi\n"
    );

    assert!(runtime::processes(c.dir()).unwrap().contains(&started.pid));
    let mut res = c.opts.resources.clone();
    res.pids_limit = Some(60);
    runtime::update(c.dir(), &res).unwrap();
    let s = runtime::stats(c.dir()).unwrap();
    assert!(
        s.pids_current >= 1 && s.pids_limit == Some(60) && s.memory_usage > 0,
        "{s:?}"
    );
    runtime::pause(c.dir()).unwrap();
    assert_eq!(runtime::state(c.dir()).unwrap().status, Status::Paused);
    runtime::resume(c.dir()).unwrap();
    assert_eq!(runtime::state(c.dir()).unwrap().status, Status::Running);
    runtime::kill(c.dir(), runtime::Signal::SIGKILL).unwrap();
    let st = runtime::wait(c.dir(), Duration::from_secs(10)).unwrap();
    assert_eq!((st.status, st.exit_code), (Status::Exited, Some(137)));
}

#[test]
fn delete_force_of_paused_container() {
    let c = Ctr::new(&name("pausedel"), &["sleep", "60"]);
    runtime::start(&c.opts).unwrap();
    runtime::pause(c.dir()).unwrap();
    let x = ExecOptions {
        id: "x".into(),
        process: ProcessConfig {
            args: vec!["true".into()],
            ..Default::default()
        },
        shim_exe: c.opts.shim_exe.clone(),
        ..Default::default()
    };
    assert!(matches!(
        runtime::exec(c.dir(), &x),
        Err(RuntimeError::WrongState { .. })
    ));
    assert!(runtime::delete(c.dir(), false).is_err());
    runtime::delete(c.dir(), true).unwrap();
    let st = runtime::state(c.dir()).unwrap();
    assert_eq!((st.status, st.exit_code), (Status::Exited, Some(137)));
    assert!(!c.dir().join("rootfs").exists() && !c.dir().join("shim.sock").exists());
}

#[test]
fn delete_after_the_shim_died() {
    let c = Ctr::new(&name("deadshim"), &["sleep", "60"]);
    let started = runtime::start(&c.opts).unwrap();
    let shim = nix::unistd::Pid::from_raw(started.shim_pid);
    nix::sys::signal::kill(shim, runtime::Signal::SIGKILL).unwrap();
    let t0 = std::time::Instant::now();
    while std::fs::read_to_string(format!("/proc/{}/stat", started.shim_pid))
        .is_ok_and(|s| !s.contains(") Z"))
    {
        assert!(t0.elapsed() < Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(10));
    }
    // The container runs on without its supervisor.
    let st = runtime::state(c.dir()).unwrap();
    assert_eq!((st.status, st.pid), (Status::Running, Some(started.pid)));
    runtime::delete(c.dir(), true).unwrap();
    let st = runtime::state(c.dir()).unwrap();
    assert_eq!((st.status, st.exit_code), (Status::Exited, None));
}

/// Not a test on its own: the child process of `shim_outlives_its_parent`.
#[test]
#[ignore]
fn helper_start_then_hang() {
    let Ok(cfg) = std::env::var("AMBER_TEST_HELPER_OPTS") else {
        return;
    };
    let opts: runtime::CreateOptions = serde_json::from_str(&cfg).unwrap();
    runtime::start(&opts).unwrap();
    std::thread::sleep(Duration::from_secs(120));
}

#[test]
fn shim_outlives_its_parent() {
    let c = Ctr::sh(
        &name("orphan"),
        "echo out; echo err >&2; sleep 1; printf 'no newline'; exit 7",
    );
    let mut helper = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "helper_start_then_hang",
            "--include-ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(
            "AMBER_TEST_HELPER_OPTS",
            serde_json::to_string(&c.opts).unwrap(),
        )
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t0 = std::time::Instant::now();
    while !c.dir().join("started.json").exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "helper did not start the container"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    helper.kill().unwrap();
    helper.wait().unwrap();
    let st = runtime::wait(c.dir(), Duration::from_secs(20)).unwrap();
    assert_eq!(
        (st.status, st.exit_code, st.oom_killed),
        (Status::Exited, Some(7), false)
    );
    assert!(st.finished_at.is_some());
    let recs = runtime::read_log(&c.dir().join("container.log")).unwrap();
    let lines: Vec<(&str, &str)> = recs
        .iter()
        .map(|r| (r.stream.as_str(), r.log.as_str()))
        .collect();
    // stdout and stderr are separate pipes: only the order within a stream is defined.
    let of = |s: &str| {
        lines
            .iter()
            .filter(|l| l.0 == s)
            .map(|l| l.1)
            .collect::<Vec<_>>()
    };
    assert_eq!(of("stdout"), vec!["out\n", "no newline"]);
    assert_eq!(of("stderr"), vec!["err\n"]);
    assert!(recs
        .iter()
        .all(|r| r.time.len() == 30 && r.time.ends_with('Z')));
}

/// Not run by default: `cargo test --test runtime_lifecycle -- --ignored --nocapture timing`.
#[test]
#[ignore]
fn timing_start_to_exit_of_true() {
    let mut times = Vec::new();
    for i in 0..10 {
        let c = Ctr::new(&name(&format!("t{i}")), &["true"]);
        let t0 = std::time::Instant::now();
        runtime::start(&c.opts).unwrap();
        let started = t0.elapsed();
        runtime::wait(c.dir(), Duration::from_secs(10)).unwrap();
        times.push((started, t0.elapsed()));
    }
    times.sort();
    eprintln!(
        "start (median): {:?}, start to recorded exit (median): {:?}",
        times[5].0, times[5].1
    );
}
