//! `/version`, `/info` and `system check`.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::{Engine, EngineError};
use crate::types::api::{
    CheckReport, ComponentVersion, VersionResponse, API_VERSION, MIN_API_VERSION,
};

/// Docker's architecture name for the build target.
pub fn docker_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

fn kernel_release() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default()
}

impl Engine {
    /// `GET /version`.
    pub fn version(&self) -> VersionResponse {
        let mut details = BTreeMap::new();
        details.insert("ApiVersion".into(), API_VERSION.into());
        details.insert("MinAPIVersion".into(), MIN_API_VERSION.into());
        details.insert("Os".into(), "linux".into());
        details.insert("Arch".into(), docker_arch().into());
        details.insert("KernelVersion".into(), kernel_release());
        details.insert("Experimental".into(), "false".into());
        VersionResponse {
            platform: BTreeMap::from([("Name".to_string(), "amber".to_string())]),
            components: vec![ComponentVersion {
                name: "Engine".into(),
                version: crate::VERSION.into(),
                details,
            }],
            version: crate::VERSION.into(),
            api_version: API_VERSION.into(),
            min_api_version: MIN_API_VERSION.into(),
            git_commit: option_env!("AMBER_GIT_COMMIT").unwrap_or("unknown").into(),
            go_version: "rust".into(),
            os: "linux".into(),
            arch: docker_arch().into(),
            kernel_version: kernel_release(),
            build_time: String::new(),
        }
    }

    /// `GET /info`: Docker's system information document.
    pub fn info(&self) -> Result<Value, EngineError> {
        let images = self.store.list_images()?.len();
        let mut counts = [0usize; 3];
        for rec in self.store.list_containers()? {
            match self.view_of(rec).map(|v| v.state.status) {
                Ok(crate::runtime::Status::Running) => counts[0] += 1,
                Ok(crate::runtime::Status::Paused) => counts[1] += 1,
                _ => counts[2] += 1,
            }
        }
        let host = nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mem_total = nix::sys::sysinfo::sysinfo()
            .map(|s| s.ram_total())
            .unwrap_or(0);
        let ncpu = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        Ok(json!({
            "ID": host,
            "Containers": counts.iter().sum::<usize>(), "ContainersRunning": counts[0],
            "ContainersPaused": counts[1], "ContainersStopped": counts[2],
            "Images": images,
            "Driver": "overlay2",
            "DriverStatus": [["Backing Filesystem", "extfs"], ["Supports d_type", "true"]],
            "Plugins": {"Volume": ["local"], "Network": ["bridge", "host", "none"], "Authorization": null, "Log": ["json-file"]},
            "MemoryLimit": true, "SwapLimit": true, "CpuCfsPeriod": true, "CpuCfsQuota": true,
            "CPUShares": true, "CPUSet": true, "PidsLimit": true, "OomKillDisable": false,
            "IPv4Forwarding": true, "Debug": false, "NFd": 0, "NGoroutines": 0,
            "SystemTime": chrono::Local::now().to_rfc3339(),
            "LoggingDriver": "json-file",
            "CgroupDriver": "cgroupfs",
            "CgroupVersion": cgroup_version(),
            "NEventsListener": 0,
            "KernelVersion": kernel_release(),
            "OperatingSystem": os_name(),
            "OSVersion": "",
            "OSType": "linux",
            "Architecture": std::env::consts::ARCH,
            "IndexServerAddress": "https://index.docker.io/v1/",
            "RegistryConfig": {"InsecureRegistryCIDRs": ["127.0.0.0/8"], "IndexConfigs": {}, "Mirrors": []},
            "NCPU": ncpu,
            "MemTotal": mem_total,
            "DockerRootDir": self.data_root.display().to_string(),
            "HttpProxy": "", "HttpsProxy": "", "NoProxy": "",
            "Name": host,
            "Labels": [],
            "ExperimentalBuild": false,
            "ServerVersion": crate::VERSION,
            "Runtimes": {"amber": {"path": "amber"}},
            "DefaultRuntime": "amber",
            "Swarm": {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive", "ControlAvailable": false, "Error": "", "RemoteManagers": null},
            "LiveRestoreEnabled": true,
            "Isolation": "",
            "InitBinary": "",
            "SecurityOptions": ["name=seccomp,profile=builtin"],
            "Warnings": [],
            "Uptime": self.started.elapsed().as_secs(),
        }))
    }

    /// `amber system check`.
    pub fn check(&self) -> Result<CheckReport, EngineError> {
        let mut report = self.store.check()?;
        report
            .problems
            .extend(crate::capture::check::check(&self.store)?);
        Ok(report)
    }
}

fn cgroup_version() -> &'static str {
    match nix::sys::statfs::statfs("/sys/fs/cgroup") {
        Ok(s) if s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC => "2",
        _ => "1",
    }
}

fn os_name() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("PRETTY_NAME=")
                    .map(|v| v.trim_matches('"').to_string())
            })
        })
        .unwrap_or_else(|| "Linux".into())
}
