//! The container's root filesystem, built inside its own mount namespace:
//! overlay, /proc, /sys, /dev, the per-container /etc files, `pivot_root`,
//! then masked and read-only paths.
//!
//! Every mount here lives only in the container's mount namespace, so the
//! host's mount table never sees them and they vanish with the namespace.

use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::{makedev, mknod, Mode, SFlag};

use crate::runtime::cgroups::{self, Layout};
use crate::runtime::config::CreateOptions;
use crate::runtime::error::{Result, RuntimeError};

/// Docker's masked paths (moby `oci/defaults.go`, v28).
pub const MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];
/// Docker's read-only paths.
pub const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];
/// Name of the directory of short lower-dir symlinks in the container dir.
pub const LOWER_LINKS_DIR: &str = "lower";
/// Name of the overlay mount point in the container dir.
pub const ROOTFS_DIR: &str = "rootfs";
/// Per-container files bind-mounted into /etc.
pub const ETC_FILES: &[&str] = &["hostname", "hosts", "resolv.conf"];

/// (name, major, minor) of the default device nodes.
const DEVICES: &[(&str, u64, u64)] = &[
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

fn sys(op: impl Into<String>) -> impl FnOnce(nix::Error) -> RuntimeError {
    move |e| RuntimeError::sys(op, e)
}

fn do_mount(
    src: &str,
    target: &Path,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<()> {
    tracing::debug!(src, target = %target.display(), "mount");
    mount(Some(src), target, fstype, flags, data)
        .map_err(sys(format!("mount {src} on {}", target.display())))
}

/// Creates `dir/lower/N` → lower dir symlinks so the overlay option string
/// stays short whatever the number and length of lower paths.
pub fn link_lower_dirs(dir: &Path, lowers: &[PathBuf]) -> Result<()> {
    let links = dir.join(LOWER_LINKS_DIR);
    if links.exists() {
        std::fs::remove_dir_all(&links).map_err(|e| RuntimeError::io("remove", &links, e))?;
    }
    std::fs::create_dir_all(&links).map_err(|e| RuntimeError::io("create", &links, e))?;
    for (i, l) in lowers.iter().enumerate() {
        let link = links.join(i.to_string());
        std::os::unix::fs::symlink(l, &link).map_err(|e| RuntimeError::io("symlink", &link, e))?;
    }
    Ok(())
}

fn mount_overlay(opts: &CreateOptions, target: &Path) -> Result<()> {
    let links = opts.dir.join(LOWER_LINKS_DIR);
    // Relative lowerdir paths are resolved against the cwd at mount time.
    nix::unistd::chdir(&links).map_err(sys(format!("chdir {}", links.display())))?;
    let lower: Vec<String> = (0..opts.lower_dirs.len()).map(|i| i.to_string()).collect();
    let data = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.join(":"),
        opts.upper_dir.display(),
        opts.work_dir.display()
    );
    // Without a device cgroup, device nodes shipped in image layers must be inert.
    let flags = if opts.privileged || cgroups::has_device_control() {
        MsFlags::empty()
    } else {
        MsFlags::MS_NODEV
    };
    do_mount("overlay", target, Some("overlay"), flags, Some(&data)).map_err(|e| {
        RuntimeError::StartFailed {
            message: format!("failed to mount overlay: {e}"),
            exit_code: 126,
        }
    })
}

fn ensure_dir(p: &Path) -> Result<()> {
    std::fs::create_dir_all(p).map_err(|e| RuntimeError::io("create", p, e))
}

fn ensure_file(p: &Path) -> Result<()> {
    if p.symlink_metadata().is_ok() {
        if p.is_dir() {
            return Err(RuntimeError::io(
                "bind a file onto",
                p,
                std::io::ErrorKind::IsADirectory.into(),
            ));
        }
        if p.symlink_metadata()
            .map(|m| m.file_type().is_symlink())
            .unwrap_or(false)
        {
            // Never follow a symlink out of the rootfs (CVE-2021-30465 style).
            std::fs::remove_file(p).map_err(|e| RuntimeError::io("remove", p, e))?;
        } else {
            return Ok(());
        }
    }
    if let Some(d) = p.parent() {
        ensure_dir(d)?;
    }
    std::fs::write(p, b"").map_err(|e| RuntimeError::io("create", p, e))
}

/// Symlinks in /dev (Docker's set).
const DEV_LINKS: &[(&str, &str)] = &[
    ("ptmx", "pts/ptmx"),
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
    ("core", "/proc/kcore"),
];

/// (source, dir under /dev, fstype, data, extra flags) of the /dev sub-mounts.
const DEV_MOUNTS: &[(&str, &str, &str, Option<&str>, bool)] = &[
    (
        "devpts",
        "pts",
        "devpts",
        Some("newinstance,ptmxmode=0666,mode=0620,gid=5"),
        false,
    ),
    ("shm", "shm", "tmpfs", Some("mode=1777,size=65536k"), true),
    ("mqueue", "mqueue", "mqueue", None, true),
];

fn mount_dev(root: &Path, privileged: bool) -> Result<()> {
    let dev = root.join("dev");
    mountpoint_dir(&dev)?;
    let nosuid = MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME;
    do_mount(
        "tmpfs",
        &dev,
        Some("tmpfs"),
        nosuid,
        Some("mode=755,size=65536k"),
    )?;
    for (name, major, minor) in DEVICES {
        make_node(
            &dev.join(name),
            SFlag::S_IFCHR,
            makedev(*major, *minor),
            0o666,
        )?;
    }
    if privileged {
        copy_host_devices(&dev)?;
    }
    for (src, dir, fstype, data, nodev) in DEV_MOUNTS {
        let target = dev.join(dir);
        ensure_dir(&target)?;
        let mut flags = MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC;
        if *nodev {
            flags |= MsFlags::MS_NODEV;
        }
        do_mount(src, &target, Some(fstype), flags, *data)?;
    }
    for (link, target) in DEV_LINKS {
        let p = dev.join(link);
        if p.symlink_metadata().is_err() {
            std::os::unix::fs::symlink(target, &p)
                .map_err(|e| RuntimeError::io("symlink", &p, e))?;
        }
    }
    Ok(())
}

fn make_node(path: &Path, kind: SFlag, dev: u64, perm: u32) -> Result<()> {
    if path.symlink_metadata().is_ok() {
        return Ok(());
    }
    mknod(path, kind, Mode::from_bits_truncate(perm), dev)
        .map_err(sys(format!("mknod {}", path.display())))?;
    // mknod is subject to the umask; set the exact mode.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(perm))
        .map_err(|e| RuntimeError::io("chmod", path, e))
}

/// Privileged containers get the host's top-level device nodes.
fn copy_host_devices(dev: &Path) -> Result<()> {
    let entries = std::fs::read_dir("/dev").map_err(|e| RuntimeError::io("read", "/dev", e))?;
    for e in entries.flatten() {
        let Ok(md) = e.metadata() else { continue };
        let kind = if md.file_type().is_char_device() {
            SFlag::S_IFCHR
        } else if md.file_type().is_block_device() {
            SFlag::S_IFBLK
        } else {
            continue;
        };
        if e.file_name() == "ptmx" || e.file_name() == "console" {
            continue;
        }
        make_node(&dev.join(e.file_name()), kind, md.rdev(), md.mode() & 0o777)?;
    }
    Ok(())
}

/// Mounts the container's cgroups (its cgroup namespace root) read-only
/// at /sys/fs/cgroup, as Docker does: cgroup2 on v2 hosts, a tmpfs of v1
/// hierarchies otherwise.
fn mount_cgroupfs(root: &Path, privileged: bool) -> Result<()> {
    let target = root.join("sys/fs/cgroup");
    if !target.is_dir() {
        return Ok(());
    }
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let ro = if privileged {
        MsFlags::empty()
    } else {
        MsFlags::MS_RDONLY
    };
    let mounts = match cgroups::layout() {
        Layout::V2(_) => return do_mount("cgroup", &target, Some("cgroup2"), flags | ro, None),
        Layout::V1(m) => m,
    };
    do_mount("tmpfs", &target, Some("tmpfs"), flags, Some("mode=755"))?;
    let mut hierarchies: BTreeMap<&Path, Vec<&str>> = BTreeMap::new();
    for (ctrl, mp) in mounts {
        hierarchies.entry(mp.as_path()).or_default().push(ctrl);
    }
    for (mp, ctrls) in hierarchies {
        let Some(name) = mp.file_name() else { continue };
        let dir = target.join(name);
        ensure_dir(&dir)?;
        do_mount(
            "cgroup",
            &dir,
            Some("cgroup"),
            flags | ro,
            Some(&ctrls.join(",")),
        )?;
    }
    if !privileged {
        do_mount(
            "tmpfs",
            &target,
            None,
            flags | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
            None,
        )?;
    }
    Ok(())
}

/// `open_tree(2)` flag: clone the mount (linux/mount.h).
const OPEN_TREE_CLONE: libc::c_uint = 1;
/// `move_mount(2)` flag: the source is the fd itself (linux/mount.h).
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;

fn cpath(p: &Path) -> Result<std::ffi::CString> {
    std::ffi::CString::new(p.as_os_str().as_encoded_bytes())
        .map_err(|_| RuntimeError::InvalidConfig(format!("NUL byte in {}", p.display())))
}

/// A detached bind mount of `path` (new mount API), which can be attached
/// after `pivot_root` has hidden `path`.
fn clone_tree(path: &Path) -> Result<OwnedFd> {
    let c = cpath(path)?;
    let flags = OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint;
    // SAFETY: open_tree reads a valid NUL-terminated path and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, c.as_ptr(), flags) };
    if fd < 0 {
        return Err(RuntimeError::sys(
            format!("open_tree {}", path.display()),
            nix::Error::last(),
        ));
    }
    // SAFETY: the kernel just returned this fd and nothing else owns it.
    Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd as i32) })
}

/// Attaches a tree from [`clone_tree`] at `target` (a final symlink is not followed).
fn attach_tree(tree: &OwnedFd, target: &Path) -> Result<()> {
    use std::os::fd::AsRawFd;
    let t = cpath(target)?;
    // SAFETY: move_mount reads two valid NUL-terminated paths; the fd is ours.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            t.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    if r < 0 {
        return Err(RuntimeError::sys(
            format!("move_mount on {}", target.display()),
            nix::Error::last(),
        ));
    }
    Ok(())
}

/// Detached bind mounts of the per-container /etc files, taken before
/// `pivot_root` hides them.
fn clone_etc_files(opts: &CreateOptions) -> Result<Vec<(&'static str, OwnedFd)>> {
    let mut out = Vec::new();
    for name in ETC_FILES {
        let src = opts.dir.join(name);
        if src.exists() {
            out.push((*name, clone_tree(&src)?));
        }
    }
    Ok(out)
}

/// Attaches them on /etc/NAME. Runs after `pivot_root`, so that a symlinked
/// /etc in the image resolves inside the container, never to a host path.
fn bind_etc_files(trees: Vec<(&'static str, OwnedFd)>) -> Result<()> {
    for (name, tree) in trees {
        let target = Path::new("/etc").join(name);
        ensure_file(&target)?;
        attach_tree(&tree, &target)?;
    }
    Ok(())
}

/// A directory to mount on inside the rootfs; a symlink there (which would
/// resolve against the host's root before `pivot_root`) is replaced.
fn mountpoint_dir(p: &Path) -> Result<()> {
    if p.symlink_metadata()
        .is_ok_and(|m| m.file_type().is_symlink())
    {
        std::fs::remove_file(p).map_err(|e| RuntimeError::io("remove", p, e))?;
    }
    ensure_dir(p)
}

fn pivot(root: &Path) -> Result<()> {
    nix::unistd::chdir(root).map_err(sys("chdir to rootfs"))?;
    // pivot_root(".", ".") stacks the old root on the new one; detaching "."
    // then removes the old root without needing a directory for it.
    nix::unistd::pivot_root(".", ".").map_err(sys("pivot_root"))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(sys("detach old root"))?;
    nix::unistd::chdir("/").map_err(sys("chdir /"))
}

fn mask_paths() -> Result<()> {
    for p in MASKED_PATHS.iter().map(Path::new) {
        match p.metadata() {
            Ok(m) if m.is_dir() => do_mount("tmpfs", p, Some("tmpfs"), MsFlags::MS_RDONLY, None)?,
            Ok(_) => do_mount("/dev/null", p, None, MsFlags::MS_BIND, None)?,
            Err(_) => {}
        }
    }
    Ok(())
}

fn readonly_paths() -> Result<()> {
    for p in READONLY_PATHS.iter().map(Path::new) {
        if !p.exists() {
            continue;
        }
        let s = p.to_string_lossy();
        do_mount(&s, p, None, MsFlags::MS_BIND | MsFlags::MS_REC, None)?;
        let ro = MsFlags::MS_BIND
            | MsFlags::MS_REMOUNT
            | MsFlags::MS_RDONLY
            | MsFlags::MS_NOSUID
            | MsFlags::MS_NODEV
            | MsFlags::MS_NOEXEC;
        do_mount(&s, p, None, ro, None)?;
    }
    Ok(())
}

/// Builds the root filesystem and pivots into it.
pub fn prepare_rootfs(opts: &CreateOptions) -> Result<()> {
    // Keep our mounts from propagating back to the host (and vice versa).
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(sys("make / private"))?;
    let root = opts.dir.join(ROOTFS_DIR);
    mount_overlay(opts, &root)?;
    let common = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mountpoint_dir(&root.join("proc"))?;
    do_mount("proc", &root.join("proc"), Some("proc"), common, None)?;
    mountpoint_dir(&root.join("sys"))?;
    let sys_flags = if opts.privileged {
        common
    } else {
        common | MsFlags::MS_RDONLY
    };
    do_mount("sysfs", &root.join("sys"), Some("sysfs"), sys_flags, None)?;
    mount_cgroupfs(&root, opts.privileged)?;
    mount_dev(&root, opts.privileged)?;
    super::mounts::mount_all(&root, &opts.mounts)?;
    let etc_files = clone_etc_files(opts)?;
    pivot(&root)?;
    bind_etc_files(etc_files)?;
    if !opts.privileged {
        mask_paths()?;
        readonly_paths()?;
    }
    Ok(())
}
