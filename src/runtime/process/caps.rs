//! Capability sets: Docker's default set with `cap_add`/`cap_drop`, applied
//! to the bounding, permitted, effective and inheritable sets.

use caps::{CapSet, Capability, CapsHashSet};

use crate::runtime::error::{Result, RuntimeError};

/// Docker's default capabilities (moby `oci/caps/defaults.go`).
pub const DEFAULT_CAPS: &[Capability] = &[
    Capability::CAP_CHOWN,
    Capability::CAP_DAC_OVERRIDE,
    Capability::CAP_FSETID,
    Capability::CAP_FOWNER,
    Capability::CAP_MKNOD,
    Capability::CAP_NET_RAW,
    Capability::CAP_SETGID,
    Capability::CAP_SETUID,
    Capability::CAP_SETFCAP,
    Capability::CAP_SETPCAP,
    Capability::CAP_NET_BIND_SERVICE,
    Capability::CAP_SYS_CHROOT,
    Capability::CAP_KILL,
    Capability::CAP_AUDIT_WRITE,
];

fn parse_cap(name: &str) -> Result<Capability> {
    let upper = name.trim().to_ascii_uppercase();
    let full = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    full.parse()
        .map_err(|_| RuntimeError::InvalidConfig(format!("unknown capability: {name:?}")))
}

/// Capabilities this kernel and this process can hand out.
fn grantable() -> CapsHashSet {
    caps::read(None, CapSet::Bounding).unwrap_or_else(|_| caps::all())
}

/// The capability set for a container process.
///
/// Without a device cgroup (cgroup v2: this runtime installs no eBPF device
/// program) CAP_MKNOD leaves the default set, since nothing else would stop
/// a container from creating and opening a host disk's node; an explicit
/// `cap_add` still grants it.
pub fn effective_set(
    cap_add: &[String],
    cap_drop: &[String],
    privileged: bool,
) -> Result<CapsHashSet> {
    set_for(
        cap_add,
        cap_drop,
        privileged,
        crate::runtime::cgroups::has_device_control(),
    )
}

fn set_for(
    cap_add: &[String],
    cap_drop: &[String],
    privileged: bool,
    device_cgroup: bool,
) -> Result<CapsHashSet> {
    let all = grantable();
    if privileged {
        return Ok(all);
    }
    let mut set: CapsHashSet = DEFAULT_CAPS.iter().copied().collect();
    if !device_cgroup {
        set.remove(&Capability::CAP_MKNOD);
    }
    for c in cap_add {
        if c.eq_ignore_ascii_case("ALL") {
            set.extend(all.iter().copied());
        } else {
            set.insert(parse_cap(c)?);
        }
    }
    for c in cap_drop {
        if c.eq_ignore_ascii_case("ALL") {
            set.clear();
        } else {
            set.remove(&parse_cap(c)?);
        }
    }
    Ok(set.intersection(&all).copied().collect())
}

fn caps_err(op: &str, e: caps::errors::CapsError) -> RuntimeError {
    RuntimeError::StartFailed {
        message: format!("failed to {op}: {e}"),
        exit_code: 126,
    }
}

/// Drops from the bounding set everything not in `set` (needs CAP_SETPCAP, so
/// call before changing user).
pub fn limit_bounding(set: &CapsHashSet) -> Result<()> {
    for cap in caps::runtime::thread_all_supported() {
        if !set.contains(&cap) && caps::has_cap(None, CapSet::Bounding, cap).unwrap_or(false) {
            caps::drop(None, CapSet::Bounding, cap)
                .map_err(|e| caps_err("drop bounding capability", e))?;
        }
    }
    Ok(())
}

/// Sets effective and permitted to `set`, clears inheritable and ambient
/// (Docker leaves inheritable empty since 20.10).
pub fn apply_process_sets(set: &CapsHashSet) -> Result<()> {
    caps::set(None, CapSet::Effective, set)
        .map_err(|e| caps_err("set effective capabilities", e))?;
    caps::set(None, CapSet::Permitted, set)
        .map_err(|e| caps_err("set permitted capabilities", e))?;
    caps::clear(None, CapSet::Inheritable)
        .map_err(|e| caps_err("clear inheritable capabilities", e))?;
    caps::clear(None, CapSet::Ambient).map_err(|e| caps_err("clear ambient capabilities", e))
}

/// The bit mask of a set, as `/proc/self/status` shows it.
pub fn mask(set: &CapsHashSet) -> u64 {
    set.iter().fold(0, |m, c| m | c.bitmask())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_mask_is_dockers() {
        let set: CapsHashSet = DEFAULT_CAPS.iter().copied().collect();
        assert_eq!(mask(&set), 0xa80425fb);
    }

    #[test]
    fn no_mknod_without_device_cgroup() {
        assert!(!set_for(&[], &[], false, false)
            .unwrap()
            .contains(&Capability::CAP_MKNOD));
        assert!(set_for(&["MKNOD".into()], &[], false, false)
            .unwrap()
            .contains(&Capability::CAP_MKNOD));
        assert!(set_for(&[], &[], false, true)
            .unwrap()
            .contains(&Capability::CAP_MKNOD));
    }

    #[test]
    fn add_and_drop() {
        let s = set_for(&["net_admin".into()], &["CAP_CHOWN".into()], false, true).unwrap();
        assert!(s.contains(&Capability::CAP_NET_ADMIN));
        assert!(!s.contains(&Capability::CAP_CHOWN));
        assert!(set_for(&[], &["ALL".into()], false, true)
            .unwrap()
            .is_empty());
        assert!(set_for(&["BOGUS".into()], &[], false, true).is_err());
    }
}
