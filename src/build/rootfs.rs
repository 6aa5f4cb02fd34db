//! The step container's root as COPY/ADD need it: `mkdir -p`, whether a
//! path is a directory, `--chown` names from its `/etc/passwd` and
//! `/etc/group`; every path resolved inside the root by `archive::copy`.

use std::io::{Cursor, Read};
use std::path::Path;

use super::context::Owner;
use super::BuildError;
use crate::archive::copy::{self as cp, go_mode, CopyOptions};
use crate::archive::ArchiveError;

fn host_err(e: impl std::fmt::Display) -> BuildError {
    BuildError::Host(e.to_string())
}

/// Whether `path` is a directory in the container (symlinks followed).
pub(super) fn is_dir_in(root: &Path, path: &str) -> Result<bool, BuildError> {
    Ok(stat_dir(root, path)? == Some(true))
}

/// Some(is_dir) when `path` exists in the container.
fn stat_dir(root: &Path, path: &str) -> Result<Option<bool>, BuildError> {
    let mut p = path.to_string();
    for _ in 0..40 {
        match cp::stat_path(root, &p) {
            Ok(st)
                if st.mode & go_mode::SYMLINK != 0
                    && !st.link_target.is_empty()
                    && st.link_target != p =>
            {
                p = st.link_target.clone();
            }
            Ok(st) => return Ok(Some(st.mode & go_mode::DIR != 0)),
            Err(ArchiveError::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(host_err(e)),
        }
    }
    Err(BuildError::Invalid(format!("too many symlinks at {path}")))
}

/// `mkdir -p` inside the container root, new directories owned by `owner`.
pub(super) fn ensure_dir(root: &Path, dir: &str, owner: Owner) -> Result<(), BuildError> {
    let parts: Vec<&str> = dir
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    let mut existing = 0;
    for n in 1..=parts.len() {
        let p = format!("/{}", parts[..n].join("/"));
        match stat_dir(root, &p)? {
            Some(true) => existing = n,
            Some(false) => {
                return Err(BuildError::Invalid(format!(
                    "cannot create directory {dir}: {p} is not a directory"
                )))
            }
            None => break,
        }
    }
    if existing == parts.len() {
        return Ok(());
    }
    let base = format!("/{}", parts[..existing].join("/"));
    let mut tar = tar::Builder::new(Vec::new());
    for n in existing + 1..=parts.len() {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_uid(owner.uid);
        h.set_gid(owner.gid);
        h.set_size(0);
        h.set_mtime(chrono::Utc::now().timestamp().max(0) as u64);
        tar.append_data(
            &mut h,
            format!("{}/", parts[existing..n].join("/")),
            std::io::empty(),
        )
        .map_err(host_err)?;
    }
    let data = tar.into_inner().map_err(host_err)?;
    let opts = CopyOptions {
        no_overwrite_dir_non_dir: false,
        copy_uid_gid: true,
    };
    cp::extract_tar_into(root, &base, Cursor::new(data), &opts).map_err(host_err)
}

/// `--chown=user[:group]`, names looked up in the container's
/// `/etc/passwd` and `/etc/group` (read inside its root).
pub(super) fn resolve_owner(root: &Path, spec: &str) -> Result<Owner, BuildError> {
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let (uid, primary) = match u.parse::<u64>() {
        Ok(n) => (n, None),
        Err(_) => {
            let passwd = read_in_root(root, "/etc/passwd")?;
            let f = find_entry(&passwd, u).ok_or_else(|| {
                BuildError::Invalid(format!(
                    "unable to find user {u}: no matching entries in passwd file"
                ))
            })?;
            (f.0, Some(f.1))
        }
    };
    let gid = match g {
        None => primary.unwrap_or(uid),
        Some(g) => match g.parse::<u64>() {
            Ok(n) => n,
            Err(_) => {
                let group = read_in_root(root, "/etc/group")?;
                find_entry(&group, g)
                    .ok_or_else(|| {
                        BuildError::Invalid(format!(
                            "unable to find group {g}: no matching entries in group file"
                        ))
                    })?
                    .0
            }
        },
    };
    Ok(Owner { uid, gid })
}

/// (field 3, field 4) of the line whose first field is `name`.
fn find_entry(file: &str, name: &str) -> Option<(u64, u64)> {
    file.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        if f.first() != Some(&name) || f.len() < 3 {
            return None;
        }
        let id = f[2].parse().ok()?;
        let second = f.get(3).and_then(|x| x.parse().ok()).unwrap_or(id);
        Some((id, second))
    })
}

fn read_in_root(root: &Path, path: &str) -> Result<String, BuildError> {
    let mut buf = Vec::new();
    if cp::write_tar_of(root, path, &mut buf).is_err() {
        return Ok(String::new());
    }
    let mut ar = tar::Archive::new(&buf[..]);
    let mut text = String::new();
    if let Some(Ok(mut e)) = ar.entries().map_err(host_err)?.next() {
        let _ = e.read_to_string(&mut text);
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwd_lookup() {
        let p = "root:x:0:0:root:/root:/bin/sh\ntester:x:1000:1001::/home:/bin/sh\n";
        assert_eq!(find_entry(p, "tester"), Some((1000, 1001)));
        assert_eq!(find_entry(p, "nobody"), None);
        assert_eq!(find_entry("wheel:x:10:tester\n", "wheel"), Some((10, 10)));
    }
}
