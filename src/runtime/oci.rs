//! The effective configuration of a container as an OCI runtime spec (the
//! `config.json` of a bundle): for inspection, capture, and replay by
//! another OCI runtime. Values that only exist inside a running container
//! (the resolved uid/gid) are left to annotations.

use std::path::PathBuf;
use std::str::FromStr;

use oci_spec::runtime::{
    Capabilities, Capability, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxCpuBuilder,
    LinuxMemoryBuilder, LinuxNamespace, LinuxNamespaceBuilder, LinuxNamespaceType,
    LinuxPidsBuilder, LinuxResourcesBuilder, Mount, MountBuilder, PosixRlimit, PosixRlimitBuilder,
    PosixRlimitType, ProcessBuilder, RootBuilder, Spec,
};

use super::config::CreateOptions;
use super::error::{Result, RuntimeError};
use super::process::caps::effective_set;
use super::process::exec::build_env;
use super::process::rootfs::{MASKED_PATHS, READONLY_PATHS, ROOTFS_DIR};

/// Annotation holding the unresolved `user` string.
pub const USER_ANNOTATION: &str = "org.amber.user";

fn oci_err(e: impl std::fmt::Display) -> RuntimeError {
    RuntimeError::InvalidConfig(format!("cannot express as an OCI spec: {e}"))
}

fn namespaces(opts: &CreateOptions) -> Result<Vec<LinuxNamespace>> {
    use LinuxNamespaceType as T;
    [T::Pid, T::Network, T::Ipc, T::Uts, T::Mount, T::Cgroup]
        .into_iter()
        .map(|t| {
            let b = LinuxNamespaceBuilder::default().typ(t);
            match (&opts.netns, t) {
                (Some(p), T::Network) => b.path(p.clone()).build(),
                _ => b.build(),
            }
            .map_err(oci_err)
        })
        .collect()
}

fn mount(dest: &str, typ: &str, src: &str, options: &[&str]) -> Result<Mount> {
    MountBuilder::default()
        .destination(dest)
        .typ(typ)
        .source(src)
        .options(options.iter().map(|o| o.to_string()).collect::<Vec<_>>())
        .build()
        .map_err(oci_err)
}

fn mounts(opts: &CreateOptions) -> Result<Vec<Mount>> {
    let ro = if opts.privileged { "rw" } else { "ro" };
    let mut out = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"])?,
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        )?,
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        )?,
        mount("/sys", "sysfs", "sysfs", &["nosuid", "noexec", "nodev", ro])?,
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["nosuid", "noexec", "nodev", "relatime", ro],
        )?,
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        )?,
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        )?,
    ];
    for name in ["hostname", "hosts", "resolv.conf"] {
        let src = opts.dir.join(name).to_string_lossy().into_owned();
        out.push(mount(
            &format!("/etc/{name}"),
            "bind",
            &src,
            &["rbind", "rprivate"],
        )?);
    }
    for m in &opts.mounts {
        let ro = if m.readonly { "ro" } else { "rw" };
        let extra = m.options.as_deref().unwrap_or("");
        let mut options = vec![ro];
        match m.kind {
            super::config::MountKind::Bind => {
                options.extend(["rbind", "rprivate"]);
                let src = m.source.to_string_lossy().into_owned();
                out.push(mount(&m.destination, "bind", &src, &options)?);
            }
            super::config::MountKind::Tmpfs => {
                options.extend(["nosuid", "nodev"]);
                options.extend(extra.split(',').filter(|o| !o.is_empty()));
                out.push(mount(&m.destination, "tmpfs", "tmpfs", &options)?);
            }
        }
    }
    Ok(out)
}

fn capabilities(opts: &CreateOptions) -> Result<Capabilities> {
    let p = &opts.process;
    let set = effective_set(&p.cap_add, &p.cap_drop, opts.privileged)?;
    Ok(set
        .iter()
        .filter_map(|c| Capability::from_str(c.to_string().trim_start_matches("CAP_")).ok())
        .collect())
}

fn rlimits(opts: &CreateOptions) -> Result<Vec<PosixRlimit>> {
    opts.process
        .rlimits
        .iter()
        .map(|r| {
            let name = r.name.to_ascii_uppercase();
            let name = if name.starts_with("RLIMIT_") {
                name
            } else {
                format!("RLIMIT_{name}")
            };
            let typ = PosixRlimitType::from_str(&name).map_err(oci_err)?;
            PosixRlimitBuilder::default()
                .typ(typ)
                .soft(r.soft)
                .hard(r.hard)
                .build()
                .map_err(oci_err)
        })
        .collect()
}

fn resources(opts: &CreateOptions) -> Result<oci_spec::runtime::LinuxResources> {
    let r = &opts.resources;
    let mut mem = LinuxMemoryBuilder::default();
    if let Some(m) = r.memory {
        mem = mem.limit(m).swap(r.memory_swap.unwrap_or(m * 2));
    }
    let mut cpu = LinuxCpuBuilder::default();
    if let Some(c) = r.cpus {
        cpu = cpu.period(100_000u64).quota((c * 100_000.0).round() as i64);
    }
    if let Some(s) = r.cpu_shares {
        cpu = cpu.shares(s);
    }
    let mut b = LinuxResourcesBuilder::default()
        .memory(mem.build().map_err(oci_err)?)
        .cpu(cpu.build().map_err(oci_err)?);
    if let Some(n) = r.pids_limit {
        b = b.pids(
            LinuxPidsBuilder::default()
                .limit(n)
                .build()
                .map_err(oci_err)?,
        );
    }
    b.build().map_err(oci_err)
}

fn process(opts: &CreateOptions) -> Result<oci_spec::runtime::Process> {
    let p = &opts.process;
    let caps = capabilities(opts)?;
    let lc = LinuxCapabilitiesBuilder::default()
        .bounding(caps.clone())
        .effective(caps.clone())
        .permitted(caps)
        .build()
        .map_err(oci_err)?;
    ProcessBuilder::default()
        .terminal(p.tty)
        .args(p.args.clone())
        .env(build_env(&p.env, &opts.hostname(), "/root", p.tty))
        .cwd(PathBuf::from(p.cwd.clone().unwrap_or_else(|| "/".into())))
        .capabilities(lc)
        .rlimits(rlimits(opts)?)
        .no_new_privileges(!opts.privileged)
        .build()
        .map_err(oci_err)
}

/// The OCI runtime spec equivalent to what [`super::start`] applies
/// (seccomp is summarized by `no_new_privileges`, not exported).
pub fn to_spec(opts: &CreateOptions) -> Result<Spec> {
    let (masked, readonly): (Vec<String>, Vec<String>) = if opts.privileged {
        (vec![], vec![])
    } else {
        (
            MASKED_PATHS.iter().map(|s| s.to_string()).collect(),
            READONLY_PATHS.iter().map(|s| s.to_string()).collect(),
        )
    };
    let linux = LinuxBuilder::default()
        .namespaces(namespaces(opts)?)
        .masked_paths(masked)
        .readonly_paths(readonly)
        .resources(resources(opts)?)
        .cgroups_path(PathBuf::from("/").join(opts.cgroup_parent()).join(&opts.id))
        .build()
        .map_err(oci_err)?;
    let root = RootBuilder::default()
        .path(opts.dir.join(ROOTFS_DIR))
        .readonly(false)
        .build()
        .map_err(oci_err)?;
    let mut spec = Spec::default();
    spec.set_hostname(Some(opts.hostname()));
    spec.set_root(Some(root));
    spec.set_process(Some(process(opts)?));
    spec.set_mounts(Some(mounts(opts)?));
    spec.set_linux(Some(linux));
    if let Some(u) = &opts.process.user {
        spec.set_annotations(Some(
            [(USER_ANNOTATION.to_string(), u.clone())]
                .into_iter()
                .collect(),
        ));
    }
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::config::{ProcessConfig, Resources, Rlimit};

    #[test]
    fn exports_docker_defaults() {
        let opts = CreateOptions {
            id: "c1".into(),
            dir: "/var/lib/amber/containers/c1".into(),
            netns: Some("/run/netns/n1".into()),
            process: ProcessConfig {
                args: vec!["sh".into()],
                user: Some("tester".into()),
                rlimits: vec![Rlimit {
                    name: "nofile".into(),
                    soft: 10,
                    hard: 20,
                }],
                cap_add: vec!["NET_ADMIN".into()],
                ..Default::default()
            },
            resources: Resources {
                memory: Some(1 << 26),
                cpus: Some(1.5),
                pids_limit: Some(9),
                ..Default::default()
            },
            ..Default::default()
        };
        let spec = to_spec(&opts).unwrap();
        let json = serde_json::to_value(&spec).unwrap();
        let linux = &json["linux"];
        assert_eq!(linux["resources"]["cpu"]["quota"], 150_000);
        assert_eq!(linux["resources"]["memory"]["limit"], 1 << 26);
        assert_eq!(linux["resources"]["pids"]["limit"], 9);
        assert_eq!(linux["cgroupsPath"], "/amber/c1");
        assert!(linux["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["path"] == "/run/netns/n1"));
        assert!(linux["maskedPaths"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p == "/proc/kcore"));
        let bounding = json["process"]["capabilities"]["bounding"]
            .as_array()
            .unwrap();
        assert!(
            bounding.iter().any(|c| c == "CAP_NET_ADMIN")
                && bounding.iter().any(|c| c == "CAP_KILL")
        );
        assert_eq!(json["process"]["rlimits"][0]["type"], "RLIMIT_NOFILE");
        assert_eq!(json["annotations"][USER_ANNOTATION], "tester");
        assert_eq!(json["hostname"], "c1");
    }
}
