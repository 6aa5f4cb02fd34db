//! Harness of the runtime integration tests (included by `runtime.rs` and
//! `runtime_lifecycle.rs`): a cached busybox rootfs, one temp dir and one
//! cgroup parent per test, and cleanup checks (no mounts, no cgroups left).

#![allow(dead_code)]

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
