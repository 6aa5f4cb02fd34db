//! The in-process part of `amber run --rm busybox true`: the runtime
//! starting a container under its shim (namespaces, overlay root, cgroup,
//! seccomp), waiting for its exit, and deleting it. The end-to-end figure
//! (CLI → daemon → container → exit), side by side with podman and docker,
//! comes from `benches/compare-run.sh`.
//!
//! `cargo bench --bench run` (as root).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use amber::runtime::{self, CreateOptions, ProcessConfig};
use criterion::{criterion_group, criterion_main, Criterion};

fn busybox_rootfs(dir: &Path) -> PathBuf {
    let root = dir.join("rootfs");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/images/busybox.sh");
    let st = Command::new(script)
        .arg("--dir")
        .arg(&root)
        .status()
        .expect("busybox.sh");
    assert!(st.success());
    root
}

fn bench_run(c: &mut Criterion) {
    let work = tempfile::tempdir().expect("tempdir");
    let rootfs = busybox_rootfs(work.path());
    let shim = PathBuf::from(env!("CARGO_BIN_EXE_amber"));
    let parent = format!("amber-bench-{}", std::process::id());
    let mut n = 0u64;
    c.bench_function("runtime_start_wait_delete_true", |b| {
        b.iter(|| {
            n += 1;
            let dir = work.path().join(format!("c{n}"));
            for sub in ["upper", "work"] {
                std::fs::create_dir_all(dir.join(sub)).expect("mkdir");
            }
            let opts = CreateOptions {
                id: format!("{:064x}", n),
                dir: dir.clone(),
                lower_dirs: vec![rootfs.clone()],
                upper_dir: dir.join("upper"),
                work_dir: dir.join("work"),
                process: ProcessConfig {
                    args: vec!["true".into()],
                    ..Default::default()
                },
                cgroup_parent: Some(parent.clone()),
                shim_exe: Some(shim.clone()),
                ..Default::default()
            };
            runtime::start(&opts).expect("start");
            let st = runtime::wait(&dir, Duration::from_secs(10)).expect("wait");
            assert_eq!(st.exit_code, Some(0));
            runtime::delete(&dir, true).expect("delete");
        })
    });
    for ctl in std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
    {
        let _ = std::fs::remove_dir(ctl.path().join(&parent));
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = bench_run
}
criterion_main!(benches);
