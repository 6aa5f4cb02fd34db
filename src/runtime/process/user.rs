//! Resolving `user[:group]` against the container's `/etc/passwd` and `/etc/group`.

use crate::runtime::error::{Result, RuntimeError};

/// A resolved user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Supplementary group ids.
    pub groups: Vec<u32>,
    /// Home directory (for `$HOME`).
    pub home: String,
}

struct PasswdEntry<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
    home: &'a str,
}

fn passwd_entries(passwd: &str) -> impl Iterator<Item = PasswdEntry<'_>> {
    passwd.lines().filter_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 6).then(|| {
            Some(PasswdEntry {
                name: f[0],
                uid: f[2].parse().ok()?,
                gid: f[3].parse().ok()?,
                home: f[5],
            })
        })?
    })
}

fn group_entries(group: &str) -> impl Iterator<Item = (&str, u32, Vec<&str>)> {
    group.lines().filter_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 4).then(|| {
            Some((
                f[0],
                f[2].parse().ok()?,
                f[3].split(',').filter(|m| !m.is_empty()).collect(),
            ))
        })?
    })
}

fn resolve_group(g: &str, group: &str) -> Result<u32> {
    if let Ok(gid) = g.parse::<u32>() {
        return Ok(gid);
    }
    group_entries(group)
        .find(|(n, _, _)| *n == g)
        .map(|(_, gid, _)| gid)
        .ok_or_else(|| RuntimeError::StartFailed {
            message: format!("unable to find group {g}: no matching entries in group file"),
            exit_code: 126,
        })
}

/// Groups listing the user (by name) as a member, except its primary group.
fn supplementary_groups(uid: u32, gid: u32, passwd: &str, group: &str) -> Vec<u32> {
    let Some(name) = passwd_entries(passwd)
        .find(|e| e.uid == uid)
        .map(|e| e.name)
    else {
        return vec![];
    };
    group_entries(group)
        .filter(|(_, g, members)| members.contains(&name) && *g != gid)
        .map(|(_, g, _)| g)
        .collect()
}

/// Resolves a Docker `--user` value (`name`, `uid`, `name:group`, `uid:gid`,
/// empty = root) with the texts of `/etc/passwd` and `/etc/group`.
pub fn resolve(spec: Option<&str>, passwd: &str, group: &str) -> Result<User> {
    let spec = spec.unwrap_or("").trim();
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let u = if u.is_empty() { "0" } else { u };
    let entry = match u.parse::<u32>() {
        Ok(uid) => passwd_entries(passwd).find(|e| e.uid == uid),
        Err(_) => passwd_entries(passwd).find(|e| e.name == u),
    };
    let mut user = match (entry, u.parse::<u32>()) {
        (Some(e), _) => User {
            uid: e.uid,
            gid: e.gid,
            groups: vec![],
            home: e.home.to_string(),
        },
        // Docker: a numeric uid without a passwd entry runs with gid 0 and home /.
        (None, Ok(uid)) => User {
            uid,
            gid: 0,
            groups: vec![],
            home: "/".into(),
        },
        (None, Err(_)) => {
            return Err(RuntimeError::StartFailed {
                message: format!("unable to find user {u}: no matching entries in passwd file"),
                exit_code: 126,
            })
        }
    };
    if let Some(g) = g.filter(|g| !g.is_empty()) {
        user.gid = resolve_group(g, group)?;
    }
    user.groups = supplementary_groups(user.uid, user.gid, passwd, group);
    Ok(user)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\ntester:x:1000:1000:tester:/home/tester:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nwheel:x:10:tester\nusers:x:100:tester,bob\ntester:x:1000:\n";

    #[test]
    fn resolves_users() {
        let r = resolve(None, PASSWD, GROUP).unwrap();
        assert_eq!((r.uid, r.gid, r.home.as_str()), (0, 0, "/root"));
        let t = resolve(Some("tester"), PASSWD, GROUP).unwrap();
        assert_eq!(
            (t.uid, t.gid, t.groups.clone()),
            (1000, 1000, vec![10, 100])
        );
        let n = resolve(Some("1000:users"), PASSWD, GROUP).unwrap();
        assert_eq!((n.uid, n.gid), (1000, 100));
        let x = resolve(Some("4242:7"), PASSWD, GROUP).unwrap();
        assert_eq!((x.uid, x.gid, x.home.as_str()), (4242, 7, "/"));
    }

    #[test]
    fn bad_names() {
        let e = resolve(Some("nosuch"), PASSWD, GROUP)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "unable to find user nosuch: no matching entries in passwd file"
        );
        assert!(resolve(Some("tester:nogroup"), PASSWD, GROUP).is_err());
    }
}
