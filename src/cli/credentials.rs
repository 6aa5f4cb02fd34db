//! Registry credentials of the user running the CLI: `~/.amber/config.json`
//! (`{"auths": {"HOST": {"auth": base64("user:password")}}}`, as Docker's
//! config.json), mode 0600, written with a temporary file and a rename.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use anyhow::Context;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::registry::client::Credentials;
use crate::types::{Reference, DEFAULT_DOMAIN};

#[derive(Debug, Default, Serialize, Deserialize)]
struct ConfigFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(flatten)]
    other: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: String,
}

/// The user's amber directory: `~/.amber` (`/root/.amber` without `HOME`).
pub fn user_dir() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root"))
        .join(".amber")
}

/// `$AMBER_CONFIG/config.json`, else `~/.amber/config.json`.
fn path() -> PathBuf {
    let dir = std::env::var_os("AMBER_CONFIG")
        .map(PathBuf::from)
        .unwrap_or_else(user_dir);
    dir.join("config.json")
}

fn read() -> anyhow::Result<ConfigFile> {
    let p = path();
    match std::fs::read(&p) {
        Ok(b) => {
            serde_json::from_slice(&b).with_context(|| format!("{} is not valid JSON", p.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ConfigFile::default()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", p.display())),
    }
}

fn write(cfg: &ConfigFile) -> anyhow::Result<()> {
    let p = path();
    let dir = p.parent().unwrap_or(std::path::Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let tmp = dir.join(format!(".config.json.{}", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    f.write_all(&serde_json::to_vec_pretty(cfg)?)?;
    f.sync_all()?;
    std::fs::rename(&tmp, &p).with_context(|| format!("cannot write {}", p.display()))?;
    Ok(())
}

/// The key credentials are stored under (`docker.io` for Docker Hub).
pub fn server_key(server: &str) -> String {
    let s = server
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let s = s.split('/').next().unwrap_or(s);
    if s.is_empty() || s == "index.docker.io" || s == "registry-1.docker.io" {
        DEFAULT_DOMAIN.to_string()
    } else {
        s.to_string()
    }
}

/// Store credentials for `server`.
pub fn store(server: &str, user: &str, password: &str) -> anyhow::Result<PathBuf> {
    let mut cfg = read()?;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    cfg.auths.insert(server_key(server), AuthEntry { auth });
    write(&cfg)?;
    Ok(path())
}

/// Forget credentials for `server`; whether there were any.
pub fn remove(server: &str) -> anyhow::Result<bool> {
    let mut cfg = read()?;
    let had = cfg.auths.remove(&server_key(server)).is_some();
    if had {
        write(&cfg)?;
    }
    Ok(had)
}

/// Stored credentials for `server`.
pub fn lookup(server: &str) -> Option<Credentials> {
    let cfg = read().ok()?;
    let key = server_key(server);
    let e = cfg.auths.get(&key)?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(&e.auth)
        .ok()?;
    let raw = String::from_utf8(raw).ok()?;
    let (u, p) = raw.split_once(':')?;
    Some(Credentials {
        username: u.to_string(),
        password: p.to_string(),
        serveraddress: key,
        ..Default::default()
    })
}

/// `X-Registry-Auth` for an image name (empty `{}` when none is stored).
pub fn header_for_image(name: &str) -> String {
    let host = Reference::parse(name)
        .map(|r| r.domain().to_string())
        .unwrap_or_default();
    lookup(&host).unwrap_or_default().to_header()
}
