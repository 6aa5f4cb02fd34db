//! Runtime integration tests, isolation and limits: real namespaces,
//! overlayfs and cgroups on a busybox rootfs. Run as root:
//! `cargo test --test runtime`.

#[path = "runtime_harness/mod.rs"]
mod harness;

use std::time::Duration;

use amber::runtime::{self, Resources, RuntimeError, Status};
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
        "echo pid=$$; ps -o pid,comm | sed 's/^/ps: /'; hostname; cat /etc/hostname; grep -E 'CapEff|Seccomp:|NoNewPrivs' /proc/self/status; \
         echo fds=$(ls /proc/self/fd); ip link 2>/dev/null | grep -c LOOPBACK; mount | grep -c ' / '",
    );
    let (st, out, err) = c.run();
    assert_eq!(st.exit_code, Some(0), "stderr: {err}");
    assert!(out.contains("pid=1\n"), "{out}");
    // Only the container's own few processes (sh, ps, maybe sed) are
    // visible, numbered from 1: nothing of the host.
    let pids: Vec<u32> = out
        .lines()
        .filter_map(|l| l.strip_prefix("ps: "))
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect();
    assert!(
        pids.contains(&1) && pids.len() <= 3 && pids.iter().all(|p| *p < 10),
        "{out}"
    );
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
fn image_symlinks_cannot_reach_the_host() {
    // /etc -> /root exists on the host and in the image: the /etc files must
    // land in the container's /root, not the host's; /proc -> a path that
    // exists nowhere must not be created on the host.
    let host_files = ["/root/hostname", "/root/hosts", "/root/resolv.conf"];
    assert!(
        host_files.iter().all(|f| !std::path::Path::new(f).exists()),
        "host has /root/hostname etc already"
    );
    let host_proc = std::path::PathBuf::from(format!("/amber-test-nowhere-{}", std::process::id()));
    let mut c = Ctr::sh(
        &name("symlinks"),
        "cat /etc/hostname; ls /root; ls /proc/self/fd >/dev/null && echo proc-ok",
    );
    let evil = c.tmp.path().join("evil-layer");
    std::fs::create_dir(&evil).unwrap();
    std::os::unix::fs::symlink("/root", evil.join("etc")).unwrap();
    std::os::unix::fs::symlink(&host_proc, evil.join("proc")).unwrap();
    c.opts.lower_dirs.insert(0, evil);
    let (st, out, err) = c.run();
    assert_eq!(st.exit_code, Some(0), "{err}");
    assert_eq!(
        out,
        format!(
            "{}-host\nhostname\nhosts\nresolv.conf\nproc-ok\n",
            c.opts.id
        )
    );
    assert!(
        host_files.iter().all(|f| !std::path::Path::new(f).exists()),
        "the rootfs setup wrote to the host's /root"
    );
    assert!(
        !host_proc.exists(),
        "the rootfs setup created a host directory"
    );
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

/// Removes the v2 test cgroups (killing what is left in them) on drop.
struct V2Guard(Vec<runtime::Cgroup>, std::path::PathBuf);

impl Drop for V2Guard {
    fn drop(&mut self) {
        for cg in &self.0 {
            let _ = cg.destroy();
        }
        let _ = std::fs::remove_dir(&self.1);
    }
}

#[test]
fn cgroup_v2_core_on_this_host() {
    // Hybrid hosts have a controller-less cgroup2 at /sys/fs/cgroup/unified:
    // enough to exercise the v2 create/attach/freeze/destroy path and the
    // eBPF device program for real.
    let on_v2 = matches!(runtime::cgroups::layout(), runtime::Layout::V2(_));
    let root = std::path::PathBuf::from(if on_v2 {
        "/sys/fs/cgroup"
    } else {
        "/sys/fs/cgroup/unified"
    });
    if !root.join("cgroup.controllers").exists() {
        eprintln!("no cgroup2 mount: skipped");
        return;
    }
    let parent = name("amber-test-v2");
    let v2 =
        |leaf: &str| runtime::Cgroup::with_layout(runtime::Layout::V2(root.clone()), &parent, leaf);
    let guard = V2Guard(vec![v2("c"), v2("d")], root.join(&parent));
    let cg = &guard.0[0];
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

    // The eBPF device program: /dev/null allowed, a block device denied.
    let cg = &guard.0[1];
    cg.create().unwrap();
    cg.restrict_devices().unwrap();
    let procs = cg.paths()[0].join("cgroup.procs");
    let script = format!(
        "echo $$ > {}; head -c0 /dev/null && echo null-ok; head -c0 /dev/loop0 2>/dev/null && echo loop-opened; echo end",
        procs.display()
    );
    let sh = |script: &str| {
        let out = std::process::Command::new("sh")
            .args(["-c", script])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let before = sh("head -c0 /dev/loop0 && echo loop-opened");
    let after = sh(&script);
    eprintln!("device check: before={before:?} after={after:?}");
    if before.contains("loop-opened") {
        assert_eq!(after, "null-ok\nend\n");
    }
    drop(guard);
    assert!(!root.join(&parent).exists());
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
