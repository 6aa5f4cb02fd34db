//! Runtime integration tests: real namespaces, overlayfs and cgroups on a
//! busybox rootfs. Run as root: `cargo test --test runtime`.

use std::time::Duration;

use amber::runtime::{self, ExecOptions, Frame, ProcessConfig, Resources, RuntimeError, Status};
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
fn pid1_isolation_hostname_caps_fds() {
    let c = Ctr::sh(
        &name("iso"),
        "echo pid=$$; ps -o pid,comm | grep -vc PID; hostname; cat /etc/hostname; grep -E 'CapEff|Seccomp:|NoNewPrivs' /proc/self/status; \
         echo fds=$(ls /proc/self/fd); ip link 2>/dev/null | grep -c LOOPBACK; mount | grep -c ' / '",
    );
    let (st, out, err) = c.run();
    assert_eq!(st.exit_code, Some(0), "stderr: {err}");
    assert!(out.contains("pid=1\n"), "{out}");
    // sh, ps and grep: nothing of the host is visible.
    assert!(out.contains("pid=1\n3\n"), "{out}");
    let host = format!("{}-host\n", c.opts.id);
    assert_eq!(out.matches(&host).count(), 2, "{out}");
    assert!(out.contains(&default_capeff()), "{out}");
    assert!(out.contains("Seccomp:\t2"), "{out}");
    assert!(out.contains("NoNewPrivs:\t1"), "{out}");
    // ls's own directory fd is 3; nothing else leaks from the shim.
    assert!(out.contains("fds=0 1 2 3\n"), "{out}");
}

#[test]
fn masked_readonly_and_seccomp() {
    let mut c = Ctr::sh(
        &name("sec"),
        "echo kcore=$(cat /proc/kcore 2>/dev/null | wc -c) keys=$(cat /proc/keys | wc -c) fw=$(ls /sys/firmware | wc -l); \
         echo 1 > /proc/sys/kernel/panic_on_oops && echo procsys=writable; \
         echo h > /proc/sysrq-trigger && echo sysrq=writable; touch /sys/x && echo sys=writable; \
         unshare -U true && echo userns=allowed; mknod /tmp/disk b 8 0 && head -c1 /tmp/disk >/dev/null && echo disk=readable; \
         echo pidsmax=$(cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max); touch /sys/fs/cgroup/x && echo cgroupfs=writable; echo done",
    );
    c.opts.resources.pids_limit = Some(77);
    let (st, out, err) = c.run();
    assert_eq!(st.exit_code, Some(0), "{st:?} {out} {err}");
    assert!(out.contains("kcore=0 keys=0 fw=0"), "{out}");
    assert!(!out.contains("writable"), "{out}");
    assert!(err.contains("Read-only file system"), "{err}");
    // unshare(CLONE_NEWUSER) needs no capability: only seccomp denies it.
    assert!(!out.contains("userns=allowed"), "{out}");
    assert!(err.contains("Operation not permitted"), "{err}");
    assert!(!out.contains("disk=readable"), "{out}");
    // The container's own cgroup (cgroup namespace), read-only.
    assert!(out.contains("pidsmax=77\n"), "{out}");
    assert!(out.contains("done"));
}

#[test]
fn privileged_turns_defaults_off() {
    let mut c = Ctr::sh(
        &name("priv"),
        "grep -E 'CapEff|Seccomp:' /proc/self/status; unshare -U true && echo userns=allowed; echo devs=$(ls /dev | wc -l)",
    );
    c.opts.privileged = true;
    let (st, out, err) = c.run();
    assert_eq!(st.exit_code, Some(0), "{err}");
    assert!(out.contains("Seccomp:\t0"), "{out}");
    assert!(!out.contains("CapEff:\t00000000a80425fb"), "{out}");
    assert!(out.contains("userns=allowed"), "{out}");
    let devs: usize = out.split("devs=").nth(1).unwrap().trim().parse().unwrap();
    assert!(devs > 20, "{out}");
}

#[test]
fn user_groups_cwd_rlimits_env() {
    let mut c = Ctr::sh(
        &name("user"),
        "id; pwd; ulimit -n; grep CapEff /proc/self/status; echo home=$HOME foo=$FOO",
    );
    c.opts.process.user = Some("tester".into());
    c.opts.process.cwd = Some("/home/tester".into());
    c.opts.process.env = vec!["FOO=bar".into()];
    c.opts.process.rlimits = vec![runtime::Rlimit {
        name: "nofile".into(),
        soft: 1024,
        hard: 2048,
    }];
    let (st, out, err) = c.run();
    assert_eq!(st.exit_code, Some(0), "{err}");
    assert!(out.contains("uid=1000(tester) gid=1000(tester)"), "{out}");
    assert!(
        out.contains("10(wheel)") && out.contains("100(users)"),
        "{out}"
    );
    assert!(out.contains("/home/tester\n1024\n"), "{out}");
    assert!(out.contains("CapEff:\t0000000000000000"), "{out}");
    assert!(out.contains("home=/home/tester foo=bar"), "{out}");
}

#[test]
fn bad_input_fails_with_docker_messages() {
    type Tweak = Box<dyn Fn(&mut Ctr)>;
    let cases: [(&str, Tweak, i32, &str); 4] = [
        (
            "nocmd",
            Box::new(|c| c.opts.process.args = vec!["nosuchcmd".into()]),
            127,
            "exec: \"nosuchcmd\": executable file not found in $PATH",
        ),
        (
            "noperm",
            Box::new(|c| c.opts.process.args = vec!["/etc/passwd".into()]),
            126,
            "exec: \"/etc/passwd\": permission denied",
        ),
        (
            "nouser",
            Box::new(|c| c.opts.process.user = Some("nosuchuser".into())),
            126,
            "unable to find user nosuchuser: no matching entries in passwd file",
        ),
        (
            "nocwd",
            Box::new(|c| c.opts.process.cwd = Some("/nope".into())),
            126,
            "chdir to cwd (\"/nope\") set in config.json failed: no such file or directory",
        ),
    ];
    for (n, tweak, code, msg) in cases {
        let mut c = Ctr::new(&name(n), &["true"]);
        tweak(&mut c);
        match runtime::start(&c.opts) {
            Err(RuntimeError::StartFailed { message, exit_code }) => {
                assert_eq!(exit_code, code, "{n}: {message}");
                assert!(message.contains(msg), "{n}: {message}");
            }
            other => panic!("{n}: expected a start failure, got {other:?}"),
        }
        let st = runtime::state(c.dir()).unwrap();
        assert_eq!(
            (st.status, st.exit_code),
            (Status::Created, Some(code)),
            "{n}"
        );
    }
    let mut c = Ctr::new(&name("lowmem"), &["true"]);
    c.opts.resources.memory = Some(1 << 20);
    assert!(matches!(
        runtime::start(&c.opts),
        Err(RuntimeError::InvalidConfig(_))
    ));
}

#[test]
fn memory_limit_oom_is_reported() {
    let mut c = Ctr::sh(
        &name("oom"),
        "x=$(head -c 300000000 /dev/zero | tr '\\0' a); echo survived",
    );
    c.opts.resources = Resources {
        memory: Some(32 << 20),
        memory_swap: Some(32 << 20),
        ..Default::default()
    };
    let (st, out, _) = c.run();
    assert_eq!(st.exit_code, Some(137), "{st:?} {out}");
    assert!(st.oom_killed, "{st:?}");
    assert!(!out.contains("survived"));
}

#[test]
fn pids_limit_stops_fork() {
    let mut c = Ctr::sh(
        &name("pids"),
        "(for i in $(seq 1 30); do sleep 3 & done); echo loop-done",
    );
    c.opts.resources.pids_limit = Some(10);
    let (st, out, err) = c.run();
    assert!(out.contains("loop-done"), "{st:?} {out} {err}");
    assert!(err.contains("can't fork"), "{err}");
    assert_eq!(st.exit_code, Some(0));
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

    let s = runtime::stats(c.dir()).unwrap();
    assert!(
        s.pids_current >= 1 && s.pids_limit == Some(50) && s.memory_usage > 0,
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
fn many_lower_layers() {
    let c = Ctr::sh(&name("layers"), "cat /layer0 /layer139 /shadow");
    let mut c = c;
    let layers = c.tmp.path().join("layers");
    let mut lowers = Vec::new();
    for i in 0..140 {
        let d = layers.join(format!(
            "a-rather-long-directory-name-to-defeat-the-option-length-limit-{i:04}"
        ));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join(format!("layer{i}")), format!("L{i}\n")).unwrap();
        std::fs::write(d.join("shadow"), format!("top-is-{i}\n")).unwrap();
        lowers.push(d);
    }
    lowers.push(harness::rootfs().to_path_buf());
    c.opts.lower_dirs = lowers;
    let (st, out, err) = c.run();
    assert_eq!(st.exit_code, Some(0), "{err}");
    assert_eq!(out, "L0\nL139\ntop-is-0\n");
}

#[test]
fn joins_given_netns_and_restarts() {
    let ns = name("amber-netns");
    let ok = std::process::Command::new("ip")
        .args(["netns", "add", &ns])
        .status()
        .unwrap();
    assert!(ok.success());
    struct NsGuard(String);
    impl Drop for NsGuard {
        fn drop(&mut self) {
            let _ = std::process::Command::new("ip")
                .args(["netns", "delete", &self.0])
                .status();
        }
    }
    let _guard = NsGuard(ns.clone());
    let path = std::path::PathBuf::from("/run/netns").join(&ns);
    let mut c = Ctr::sh(
        &name("netns"),
        "readlink /proc/self/ns/net; echo run >> /runs; cat /runs | wc -l",
    );
    c.opts.netns = Some(path.clone());
    let (st, out, err) = c.run();
    assert_eq!(st.exit_code, Some(0), "{err}");
    use std::os::unix::fs::MetadataExt;
    let ino = std::fs::metadata(&path).unwrap().ino();
    assert!(out.starts_with(&format!("net:[{ino}]\n1\n")), "{out}");
    // A second start of the exited container keeps its upper layer and log.
    runtime::start(&c.opts).unwrap();
    let st = runtime::wait(c.dir(), Duration::from_secs(20)).unwrap();
    assert_eq!((st.status, st.exit_code), (Status::Exited, Some(0)));
    assert!(
        c.logs().0.ends_with(&format!("net:[{ino}]\n2\n")),
        "{:?}",
        c.logs()
    );
}

#[test]
fn cgroup_v2_core_on_this_host() {
    // Hybrid hosts have a controller-less cgroup2 at /sys/fs/cgroup/unified:
    // enough to exercise the v2 create/attach/freeze/destroy path for real.
    let root = std::path::PathBuf::from("/sys/fs/cgroup/unified");
    let on_v2 = matches!(runtime::cgroups::layout(), runtime::Layout::V2(_));
    let root = if on_v2 {
        std::path::PathBuf::from("/sys/fs/cgroup")
    } else {
        root
    };
    if !root.join("cgroup.controllers").exists() {
        eprintln!("no cgroup2 mount: skipped");
        return;
    }
    let parent = name("amber-test-v2");
    let cg = runtime::Cgroup::with_layout(runtime::Layout::V2(root.clone()), &parent, "c");
    cg.create().unwrap();
    let mut child = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    cg.add_pid(child.id() as i32).unwrap();
    cg.set_frozen(true).unwrap();
    assert!(cg.is_frozen());
    cg.set_frozen(false).unwrap();
    assert!(!cg.is_frozen());
    cg.destroy().unwrap();
    let _ = child.wait();
    assert!(!cg.exists());
    std::fs::remove_dir(root.join(&parent)).unwrap();
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
fn limits_are_applied() {
    let mut c = Ctr::sh(
        &name("limits"),
        "cd /sys/fs/cgroup; cat cpu/cpu.cfs_quota_us 2>/dev/null || cat cpu.max; cat cpu/cpu.shares 2>/dev/null || cat cpu.weight; \
         cat memory/memory.limit_in_bytes 2>/dev/null || cat memory.max",
    );
    c.opts.resources = Resources {
        cpus: Some(0.5),
        cpu_shares: Some(512),
        memory: Some(64 << 20),
        ..Default::default()
    };
    let (st, out, err) = c.run();
    assert_eq!(st.exit_code, Some(0), "{err}");
    let v2 = matches!(runtime::cgroups::layout(), runtime::Layout::V2(_));
    let want = if v2 {
        "50000 100000\n20\n67108864\n"
    } else {
        "50000\n512\n67108864\n"
    };
    assert_eq!(out, want);
    let mut bad = Ctr::new(&name("badshares"), &["true"]);
    bad.opts.resources.cpu_shares = Some(1);
    assert!(matches!(
        runtime::start(&bad.opts),
        Err(RuntimeError::InvalidConfig(_))
    ));
    bad.opts.resources = Resources {
        cpus: Some(1000.0),
        ..Default::default()
    };
    let e = runtime::start(&bad.opts).unwrap_err().to_string();
    assert!(e.contains("range of CPUs is from 0.01"), "{e}");
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

/// The harness: a cached busybox rootfs, one temp dir and one cgroup parent
/// per test, and cleanup checks (no mounts, no cgroups left).
mod harness {
    use std::path::{Path, PathBuf};
    use std::sync::OnceLock;
    use std::time::Duration;

    use amber::runtime::{self, Cgroup, CreateOptions, ProcessConfig, State};

    /// The busybox rootfs, built once per target dir.
    pub fn rootfs() -> &'static Path {
        static ROOT: OnceLock<PathBuf> = OnceLock::new();
        ROOT.get_or_init(|| {
            let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
            let root = base.join("busybox-rootfs");
            if root.join("etc/amber-release").exists() {
                return root;
            }
            let tmp = base.join(format!("busybox-rootfs.tmp{}", std::process::id()));
            let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/images/busybox.sh");
            let st = std::process::Command::new("sh")
                .arg(script)
                .arg("--dir")
                .arg(&tmp)
                .status()
                .unwrap();
            assert!(st.success(), "busybox.sh failed");
            if std::fs::rename(&tmp, &root).is_err() {
                // Another test binary won the race.
                std::fs::remove_dir_all(&tmp).unwrap();
            }
            root
        })
    }

    /// One test container with its own temp dir and cgroup parent.
    pub struct Ctr {
        pub tmp: tempfile::TempDir,
        pub opts: CreateOptions,
    }

    impl Ctr {
        /// A container named `name` running `script` with `sh -c`.
        pub fn sh(name: &str, script: &str) -> Ctr {
            Ctr::new(name, &["sh", "-c", script])
        }

        /// A container named `name` running `args`.
        pub fn new(name: &str, args: &[&str]) -> Ctr {
            let tmp = tempfile::Builder::new()
                .prefix("amber-rt-")
                .tempdir()
                .unwrap();
            let t = tmp.path();
            for d in ["upper", "work", "c"] {
                std::fs::create_dir(t.join(d)).unwrap();
            }
            let opts = CreateOptions {
                id: name.to_string(),
                dir: t.join("c"),
                lower_dirs: vec![rootfs().to_path_buf()],
                upper_dir: t.join("upper"),
                work_dir: t.join("work"),
                process: ProcessConfig {
                    args: args.iter().map(|s| s.to_string()).collect(),
                    ..Default::default()
                },
                hostname: Some(format!("{name}-host")),
                cgroup_parent: Some(format!("amber-test-{}-{name}", std::process::id())),
                shim_exe: Some(PathBuf::from(env!("CARGO_BIN_EXE_amber"))),
                ..Default::default()
            };
            Ctr { tmp, opts }
        }

        pub fn dir(&self) -> &Path {
            &self.opts.dir
        }

        /// Starts, waits for exit, returns the state and the log's stdout and stderr.
        pub fn run(&self) -> (State, String, String) {
            runtime::start(&self.opts).expect("start");
            let st = runtime::wait(self.dir(), Duration::from_secs(30)).unwrap();
            assert_eq!(
                st.status,
                runtime::Status::Exited,
                "container did not exit: {st:?}"
            );
            let (out, err) = self.logs();
            (st, out, err)
        }

        /// stdout and stderr text of the log.
        pub fn logs(&self) -> (String, String) {
            let recs = runtime::read_log(&self.dir().join("container.log")).unwrap_or_default();
            let pick = |s: &str| {
                recs.iter()
                    .filter(|r| r.stream == s)
                    .map(|r| r.log.as_str())
                    .collect::<String>()
            };
            (pick("stdout"), pick("stderr"))
        }

        fn cgroup(&self) -> Cgroup {
            Cgroup::new(self.opts.cgroup_parent(), &self.opts.id)
        }

        fn cleanup(&self) -> Vec<String> {
            let mut problems = Vec::new();
            if self.dir().join("config.json").exists() {
                if let Err(e) = runtime::delete(self.dir(), true) {
                    problems.push(format!("delete: {e}"));
                }
            }
            let mounts = runtime::host_mounts_under(self.tmp.path());
            if !mounts.is_empty() {
                problems.push(format!("mounts left: {mounts:?}"));
            }
            let cg = self.cgroup();
            if cg.exists() {
                problems.push(format!("cgroup left: {:?}", cg.paths()));
                let _ = cg.destroy();
            }
            for p in cg.paths() {
                if let Some(parent) = p.parent() {
                    let _ = std::fs::remove_dir(parent);
                }
            }
            problems
        }
    }

    impl Drop for Ctr {
        fn drop(&mut self) {
            if std::thread::panicking() {
                let log = std::fs::read_to_string(self.dir().join("shim.log")).unwrap_or_default();
                eprintln!("shim.log of {}:\n{log}", self.opts.id);
            }
            let problems = self.cleanup();
            if !problems.is_empty() && !std::thread::panicking() {
                panic!("cleanup of {}: {problems:?}", self.opts.id);
            }
        }
    }

    /// Unique name for this test process.
    pub fn name(base: &str) -> String {
        format!("{base}-{}", std::process::id())
    }
}
