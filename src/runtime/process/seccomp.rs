//! The default seccomp filter, in the spirit of Docker's default profile,
//! built with `seccompiler` (no hand-written BPF).
//!
//! Docker's profile is an allow-list; this one is a deny-list of the same
//! dangerous calls (kernel modules, kexec, keyrings, bpf, handle-based opens,
//! namespace and mount manipulation without CAP_SYS_ADMIN, ...), which keeps
//! new harmless syscalls working. `clone3` gets ENOSYS like Docker's, so libcs
//! fall back to `clone`, whose namespace flags are then checked.

use std::collections::BTreeMap;

use caps::{Capability, CapsHashSet};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

use crate::runtime::error::{Result, RuntimeError};

/// Always denied (Docker: not in the allow-list at all).
const ALWAYS_DENIED: &[i64] = &[
    libc::SYS_kexec_load,
    libc::SYS_kexec_file_load,
    libc::SYS_keyctl,
    libc::SYS_add_key,
    libc::SYS_request_key,
    libc::SYS_userfaultfd,
    libc::SYS_io_uring_setup,
    libc::SYS_io_uring_enter,
    libc::SYS_io_uring_register,
    libc::SYS_swapon,
    libc::SYS_swapoff,
    libc::SYS_uselib,
    libc::SYS_acct,
    libc::SYS_nfsservctl,
    libc::SYS_vhangup,
];

/// Denied unless CAP_SYS_ADMIN is granted.
const SYS_ADMIN_ONLY: &[i64] = &[
    libc::SYS_mount,
    libc::SYS_umount2,
    libc::SYS_pivot_root,
    libc::SYS_unshare,
    libc::SYS_setns,
    libc::SYS_bpf,
    libc::SYS_fsopen,
    libc::SYS_fsconfig,
    libc::SYS_fsmount,
    libc::SYS_fspick,
    libc::SYS_move_mount,
    libc::SYS_open_tree,
    libc::SYS_mount_setattr,
    libc::SYS_perf_event_open,
    libc::SYS_quotactl,
    libc::SYS_lookup_dcookie,
    libc::SYS_name_to_handle_at,
    libc::SYS_fanotify_init,
];

/// Namespace flags `clone` may not use without CAP_SYS_ADMIN (Docker's mask 2114060288).
const CLONE_NS_FLAGS: &[u64] = &[
    libc::CLONE_NEWNS as u64,
    libc::CLONE_NEWCGROUP as u64,
    libc::CLONE_NEWUTS as u64,
    libc::CLONE_NEWIPC as u64,
    libc::CLONE_NEWUSER as u64,
    libc::CLONE_NEWPID as u64,
    libc::CLONE_NEWNET as u64,
];

/// `socket(AF_VSOCK, ...)` is denied.
const AF_VSOCK: u64 = 40;

fn other(e: impl std::fmt::Display) -> RuntimeError {
    RuntimeError::Seccomp(e.to_string())
}

fn arch() -> Result<TargetArch> {
    TargetArch::try_from(std::env::consts::ARCH).map_err(other)
}

/// Denied unless the process holds the capability.
const CAP_GATED: &[(Capability, &[i64])] = &[
    (Capability::CAP_SYS_ADMIN, SYS_ADMIN_ONLY),
    (
        Capability::CAP_SYS_MODULE,
        &[
            libc::SYS_init_module,
            libc::SYS_finit_module,
            libc::SYS_delete_module,
        ],
    ),
    (
        Capability::CAP_DAC_READ_SEARCH,
        &[libc::SYS_open_by_handle_at],
    ),
    (
        Capability::CAP_SYS_PTRACE,
        &[
            libc::SYS_ptrace,
            libc::SYS_process_vm_readv,
            libc::SYS_process_vm_writev,
        ],
    ),
    (Capability::CAP_SYS_BOOT, &[libc::SYS_reboot]),
    (
        Capability::CAP_SYS_TIME,
        &[
            libc::SYS_settimeofday,
            libc::SYS_clock_settime,
            libc::SYS_adjtimex,
        ],
    ),
];

/// One rule per namespace flag: `clone` matches when any is set.
fn clone_ns_rules() -> Result<Vec<SeccompRule>> {
    CLONE_NS_FLAGS
        .iter()
        .map(|f| {
            let c =
                SeccompCondition::new(0, SeccompCmpArgLen::Qword, SeccompCmpOp::MaskedEq(*f), *f)
                    .map_err(other)?;
            SeccompRule::new(vec![c]).map_err(other)
        })
        .collect()
}

fn eperm_rules(caps: &CapsHashSet) -> Result<BTreeMap<i64, Vec<SeccompRule>>> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for nr in ALWAYS_DENIED {
        rules.insert(*nr, vec![]);
    }
    for (_, list) in CAP_GATED.iter().filter(|(cap, _)| !caps.contains(cap)) {
        for nr in *list {
            rules.insert(*nr, vec![]);
        }
    }
    if !caps.contains(&Capability::CAP_SYS_ADMIN) {
        rules.insert(libc::SYS_clone, clone_ns_rules()?);
    }
    let vsock = SeccompCondition::new(0, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, AF_VSOCK)
        .map_err(other)?;
    rules.insert(
        libc::SYS_socket,
        vec![SeccompRule::new(vec![vsock]).map_err(other)?],
    );
    Ok(with_x32_aliases(rules))
}

/// Bit that marks x32 system calls (same audit arch as x86_64).
const X32_SYSCALL_BIT: i64 = 0x4000_0000;

/// On x86_64 a deny-list must also match the x32 numbers of its calls,
/// which share the x86_64 audit arch (i386 calls fail the filter's arch
/// check and kill the process).
fn with_x32_aliases(mut rules: BTreeMap<i64, Vec<SeccompRule>>) -> BTreeMap<i64, Vec<SeccompRule>> {
    if cfg!(target_arch = "x86_64") {
        let aliases: Vec<_> = rules
            .iter()
            .map(|(nr, r)| (nr | X32_SYSCALL_BIT, r.clone()))
            .collect();
        rules.extend(aliases);
    }
    rules
}

/// Builds the default filters for a process holding `caps`: the EPERM
/// deny-list and, without CAP_SYS_ADMIN, `clone3` → ENOSYS.
pub fn default_filters(caps: &CapsHashSet) -> Result<Vec<BpfProgram>> {
    let arch = arch()?;
    let deny = SeccompFilter::new(
        eperm_rules(caps)?,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch,
    )
    .map_err(other)?;
    let mut out = vec![BpfProgram::try_from(deny).map_err(other)?];
    if !caps.contains(&Capability::CAP_SYS_ADMIN) {
        let rules = BTreeMap::from([(libc::SYS_clone3, vec![])]);
        let f = SeccompFilter::new(
            rules,
            SeccompAction::Allow,
            SeccompAction::Errno(libc::ENOSYS as u32),
            arch,
        )
        .map_err(other)?;
        out.push(BpfProgram::try_from(f).map_err(other)?);
    }
    Ok(out)
}

/// Installs the filters on the calling thread (needs `no_new_privs` set).
pub fn install(filters: &[BpfProgram]) -> Result<()> {
    for f in filters {
        seccompiler::apply_filter(f).map_err(other)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_for_default_and_admin() {
        let none = CapsHashSet::new();
        assert_eq!(default_filters(&none).unwrap().len(), 2);
        let admin: CapsHashSet = [Capability::CAP_SYS_ADMIN].into_iter().collect();
        assert_eq!(default_filters(&admin).unwrap().len(), 1);
        assert!(eperm_rules(&none).unwrap().contains_key(&libc::SYS_mount));
        assert!(!eperm_rules(&admin).unwrap().contains_key(&libc::SYS_mount));
        if cfg!(target_arch = "x86_64") {
            assert!(eperm_rules(&none)
                .unwrap()
                .contains_key(&(libc::SYS_keyctl | X32_SYSCALL_BIT)));
        }
    }
}
