use std::ffi::OsString;

use base64::Engine as _;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use super::resolve::{own, ContainerPath};
use super::stat::{go_file_mode, go_mode, PathStat};
use super::write::is_kernel_fs;

#[test]
fn parses_container_paths() {
    let cases: &[(&str, &[&str], bool, bool)] = &[
        ("/etc/hosts", &["etc", "hosts"], false, false),
        ("etc/hosts", &["etc", "hosts"], false, false),
        ("/var/log/", &["var", "log"], false, true),
        ("/var/log/.", &["var", "log"], true, true),
        ("/a/../../b/./c", &["b", "c"], false, false),
        ("/", &[], false, true),
        ("", &[], false, true),
    ];
    for (raw, parts, contents, follow) in cases {
        let cp = ContainerPath::parse(raw);
        let want: Vec<OsString> = parts.iter().map(OsString::from).collect();
        assert_eq!(cp.parts, want, "{raw}");
        assert_eq!((cp.contents, cp.follow_last), (*contents, *follow), "{raw}");
    }
}

#[test]
fn go_modes() {
    let cases = [
        (libc::S_IFREG | 0o644, 0o644),
        (libc::S_IFDIR | 0o755, go_mode::DIR | 0o755),
        (libc::S_IFLNK | 0o777, go_mode::SYMLINK | 0o777),
        (libc::S_IFIFO | 0o600, go_mode::NAMED_PIPE | 0o600),
        (libc::S_IFSOCK | 0o755, go_mode::SOCKET | 0o755),
        (libc::S_IFBLK | 0o660, go_mode::DEVICE | 0o660),
        (
            libc::S_IFCHR | 0o666,
            go_mode::DEVICE | go_mode::CHAR_DEVICE | 0o666,
        ),
        (libc::S_IFREG | 0o4755, go_mode::SETUID | 0o755),
        (libc::S_IFREG | 0o2755, go_mode::SETGID | 0o755),
        (
            libc::S_IFDIR | 0o1777,
            go_mode::DIR | go_mode::STICKY | 0o777,
        ),
    ];
    for (unix, go) in cases {
        assert_eq!(go_file_mode(unix), go, "{unix:o}");
    }
    assert_eq!(go_mode::DIR | 0o755, 2147484141);
}

#[test]
fn kernel_filesystems_are_recognised() {
    let open = |p: &str| {
        nix::fcntl::open(p, OFlag::O_PATH | OFlag::O_DIRECTORY, Mode::empty())
            .map(own)
            .unwrap()
    };
    assert!(is_kernel_fs(&open("/proc")));
    assert!(is_kernel_fs(&open("/sys")));
    let t = tempfile::tempdir().unwrap();
    assert!(!is_kernel_fs(&open(t.path().to_str().unwrap())));
}

#[test]
fn header_value_is_base64_json() {
    let st = PathStat {
        name: "hosts".into(),
        size: 12,
        mode: 0o644,
        mtime: "2024-01-02T03:04:05Z".into(),
        link_target: String::new(),
    };
    let raw = base64::engine::general_purpose::STANDARD
        .decode(st.header_value())
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"name": "hosts", "size": 12, "mode": 420,
            "mtime": "2024-01-02T03:04:05Z", "linkTarget": ""})
    );
}
