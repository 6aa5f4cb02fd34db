//! A container's creation spec: Docker's config merged with the image's, as
//! Docker merges them (CMD, ENTRYPOINT, ENV, WORKDIR, USER, labels).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::EngineError;
use crate::types::api::ContainerConfig;
use crate::types::container::{CreateRequest, HostConfig};

/// What the engine stores for a container (JSON in the store's row).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ContainerSpec {
    /// The effective config (image defaults applied).
    pub config: ContainerConfig,
    /// Host-side settings.
    pub host_config: HostConfig,
    /// `argv[0]`.
    pub path: String,
    /// `argv[1..]`.
    pub args: Vec<String>,
    /// Seconds `stop` waits before SIGKILL.
    pub stop_timeout: Option<i64>,
    /// Networking config as sent (kept for inspect).
    pub networking_config: Option<serde_json::Value>,
    /// Binds, volumes and tmpfs mounts, resolved at create (`Mounts` of inspect).
    #[serde(default)]
    pub mounts: Vec<super::mounts::MountPoint>,
}

impl ContainerSpec {
    /// The whole command line.
    pub fn argv(&self) -> Vec<String> {
        let mut v = vec![self.path.clone()];
        v.extend(self.args.iter().cloned());
        v
    }
}

/// Merge a create request with the image's config.
pub fn merge(
    req: CreateRequest,
    image: &ContainerConfig,
    image_name: &str,
) -> Result<ContainerSpec, EngineError> {
    let mut c = req.config;
    c.image = image_name.to_string();
    // An explicit entrypoint resets the image's CMD (Docker's rule).
    let user_entrypoint = c.entrypoint.is_some();
    let entrypoint = match c.entrypoint.take() {
        Some(e) if e.len() == 1 && e[0].is_empty() => None,
        Some(e) => Some(e),
        None => image.entrypoint.clone(),
    };
    let cmd = match c.cmd.take() {
        Some(cmd) if !cmd.is_empty() => Some(cmd),
        _ if user_entrypoint => None,
        _ => image.cmd.clone(),
    };
    let mut argv: Vec<String> = entrypoint.clone().unwrap_or_default();
    argv.extend(cmd.clone().unwrap_or_default());
    if argv.is_empty() {
        return Err(EngineError::InvalidArgument("no command specified".into()));
    }
    c.entrypoint = entrypoint;
    c.cmd = cmd;
    c.env = Some(merge_env(
        image.env.as_deref().unwrap_or(&[]),
        c.env.as_deref().unwrap_or(&[]),
    ));
    if c.working_dir.is_empty() {
        c.working_dir = image.working_dir.clone();
    }
    if c.user.is_empty() {
        c.user = image.user.clone();
    }
    let mut labels: BTreeMap<String, String> = image.labels.clone().unwrap_or_default();
    labels.extend(c.labels.take().unwrap_or_default());
    c.labels = Some(labels);
    if c.stop_signal.is_none() {
        c.stop_signal = image.stop_signal.clone();
    }
    // Docker unions the image's EXPOSE and VOLUME with the user's.
    c.exposed_ports = union(c.exposed_ports.take(), &image.exposed_ports);
    c.volumes = union(c.volumes.take(), &image.volumes);
    let mut host_config = req.host_config;
    if host_config.network_mode.is_empty() {
        host_config.network_mode = "bridge".into();
    }
    if host_config.log_config.kind.is_empty() {
        host_config.log_config.kind = "json-file".into();
    }
    validate_restart(&host_config)?;
    let path = argv.remove(0);
    Ok(ContainerSpec {
        config: c,
        host_config,
        path,
        args: argv,
        stop_timeout: req.stop_timeout,
        networking_config: req.networking_config,
        mounts: Vec::new(),
    })
}

fn validate_restart(h: &HostConfig) -> Result<(), EngineError> {
    let p = &h.restart_policy;
    match p.name.as_str() {
        "" | "no" | "always" | "unless-stopped" | "on-failure" => {}
        other => {
            return Err(EngineError::InvalidArgument(format!(
                "invalid restart policy '{other}'"
            )))
        }
    }
    if p.maximum_retry_count != 0 && p.name != "on-failure" {
        return Err(EngineError::InvalidArgument(
            "invalid restart policy: maximum retry count can only be used with 'on-failure'".into(),
        ));
    }
    if h.auto_remove && !matches!(p.name.as_str(), "" | "no") {
        return Err(EngineError::InvalidArgument(
            "can't create 'AutoRemove' container with restart policy".into(),
        ));
    }
    Ok(())
}

fn union(
    user: Option<BTreeMap<String, serde_json::Value>>,
    image: &Option<BTreeMap<String, serde_json::Value>>,
) -> Option<BTreeMap<String, serde_json::Value>> {
    match (user, image) {
        (None, i) => i.clone(),
        (Some(mut u), Some(i)) => {
            for (k, v) in i {
                u.entry(k.clone()).or_insert_with(|| v.clone());
            }
            Some(u)
        }
        (u, None) => u,
    }
}

/// Image env, overridden key by key by the user's.
fn merge_env(image: &[String], user: &[String]) -> Vec<String> {
    let key = |e: &String| {
        e.split_once('=')
            .map(|(k, _)| k.to_string())
            .unwrap_or_else(|| e.clone())
    };
    let mut out: Vec<String> = image.to_vec();
    for e in user {
        let k = key(e);
        out.retain(|x| key(x) != k);
        out.push(e.clone());
    }
    out
}

/// A valid container name, as Docker's `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() >= 2
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

const ADJECTIVES: &[&str] = &[
    "amber", "brave", "calm", "clever", "eager", "fond", "gentle", "happy", "keen", "lucid",
    "merry", "nifty", "quirky", "sharp", "steady", "tender", "vivid", "wise", "zealous", "bold",
];
const NAMES: &[&str] = &[
    "babbage",
    "curie",
    "darwin",
    "euler",
    "fermi",
    "galois",
    "hopper",
    "kepler",
    "lovelace",
    "noether",
    "pascal",
    "ramanujan",
    "shannon",
    "tesla",
    "turing",
    "volta",
    "wiles",
    "yalow",
];

/// A Docker-style random name (`keen_lovelace`), from the container ID.
pub fn generated_name(id: &str, attempt: usize) -> String {
    let n = u64::from_str_radix(&id[..12], 16).unwrap_or(0) as usize + attempt * 7919;
    let base = format!(
        "{}_{}",
        ADJECTIVES[n % ADJECTIVES.len()],
        NAMES[(n / 31) % NAMES.len()]
    );
    if attempt == 0 {
        base
    } else {
        format!("{base}{attempt}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image() -> ContainerConfig {
        ContainerConfig {
            env: Some(vec!["PATH=/bin".into(), "A=image".into()]),
            cmd: Some(vec!["sh".into()]),
            working_dir: "/srv".into(),
            ..Default::default()
        }
    }

    #[test]
    fn docker_merge_rules() {
        let req = CreateRequest {
            config: ContainerConfig {
                env: Some(vec!["A=user".into()]),
                ..Default::default()
            },
            ..Default::default()
        };
        let s = merge(req, &image(), "bb").unwrap();
        assert_eq!(s.argv(), vec!["sh"]);
        assert_eq!(s.config.env.unwrap(), vec!["PATH=/bin", "A=user"]);
        assert_eq!(s.config.working_dir, "/srv");

        // --entrypoint resets the image's CMD.
        let req = CreateRequest {
            config: ContainerConfig {
                entrypoint: Some(vec!["echo".into()]),
                ..Default::default()
            },
            ..Default::default()
        };
        assert_eq!(merge(req, &image(), "bb").unwrap().argv(), vec!["echo"]);
        // A command replaces CMD only.
        let req = CreateRequest {
            config: ContainerConfig {
                cmd: Some(vec!["true".into()]),
                ..Default::default()
            },
            ..Default::default()
        };
        assert_eq!(merge(req, &image(), "bb").unwrap().argv(), vec!["true"]);
        // Nothing to run.
        let empty = ContainerConfig::default();
        assert!(merge(CreateRequest::default(), &empty, "x").is_err());
    }

    #[test]
    fn names() {
        assert!(valid_name("web-1.a_b"));
        assert!(!valid_name("-x") && !valid_name("a") && !valid_name("a b") && !valid_name("a/b"));
        let n = generated_name(&"ab".repeat(32), 0);
        assert!(valid_name(&n), "{n}");
    }
}
