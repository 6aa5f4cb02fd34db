//! Import of hostile or broken archives: each is refused with one clear
//! line, exit non-zero, and leaves nothing behind — no image row, no layer
//! directory, no staging leftovers, nothing outside the data root.

mod common;

use std::io::Write;
use std::path::Path;

use common::Daemon;

/// A hand-made tar entry: name, type flag, link target, data.
struct RawEntry<'a> {
    name: &'a [u8],
    kind: u8,
    link: &'a [u8],
    data: &'a [u8],
    /// Size written in the header (differs from `data.len()` for truncation).
    size: usize,
}

fn entry<'a>(name: &'a str, kind: u8, link: &'a str, data: &'a [u8]) -> RawEntry<'a> {
    RawEntry {
        name: name.as_bytes(),
        kind,
        link: link.as_bytes(),
        data,
        size: data.len(),
    }
}

/// Write ustar headers by hand so nothing sanitises the hostile fields.
fn raw_tar(entries: &[RawEntry<'_>], end_marker: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        let mut h = [0u8; 512];
        h[..e.name.len()].copy_from_slice(e.name);
        h[100..107].copy_from_slice(b"0000644");
        h[108..115].copy_from_slice(b"0000000");
        h[116..123].copy_from_slice(b"0000000");
        h[124..135].copy_from_slice(format!("{:011o}", e.size).as_bytes());
        h[136..147].copy_from_slice(b"00000000000");
        h[156] = e.kind;
        h[157..157 + e.link.len()].copy_from_slice(e.link);
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        if e.kind == b'3' || e.kind == b'4' {
            h[329..336].copy_from_slice(b"0000010");
            h[337..344].copy_from_slice(b"0000000");
        }
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|b| *b as u32).sum();
        h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        out.extend_from_slice(&h);
        out.extend_from_slice(e.data);
        let pad = (512 - e.data.len() % 512) % 512;
        if e.size == e.data.len() {
            out.extend(std::iter::repeat_n(0u8, pad));
        }
    }
    if end_marker {
        out.extend(std::iter::repeat_n(0u8, 1024));
    }
    out
}

fn good() -> RawEntry<'static> {
    entry("ok/hello.txt", b'0', "", b"hello")
}

fn assert_refused(d: &Daemon, label: &str, data: &[u8], want: &str) {
    let file = d.dir.path().join(format!("{label}.tar"));
    std::fs::write(&file, data).unwrap();
    let out = d.amber(&[
        "import",
        file.to_str().unwrap(),
        &format!("hostile:{label}"),
    ]);
    let err = common::stderr(&out);
    assert!(!out.status.success(), "{label}: import succeeded");
    assert!(err.contains(want), "{label}: expected {want:?} in {err:?}");
    assert_eq!(
        err.trim().lines().count(),
        1,
        "{label}: not one line: {err}"
    );
    assert!(
        d.ok(&["images", "-q"]).trim().is_empty(),
        "{label}: an image became visible"
    );
    assert!(
        d.entries("layers").is_empty(),
        "{label}: a layer dir is visible"
    );
    assert!(
        d.entries("tmp").is_empty(),
        "{label}: staging left behind: {:?}",
        d.entries("tmp")
    );
    assert!(
        d.entries("blobs/sha256").is_empty(),
        "{label}: blobs left behind"
    );
}

#[test]
fn hostile_archives_are_refused_and_leave_nothing() {
    let d = Daemon::start();
    let outside = d.dir.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let outside_s = outside.to_str().unwrap().to_string();
    let device = |k| RawEntry {
        name: b"dev/sda",
        kind: k,
        link: b"",
        data: b"",
        size: 0,
    };
    let truncated = RawEntry {
        name: b"big.bin",
        kind: b'0',
        link: b"",
        data: &[7u8; 100],
        size: 10_000,
    };

    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "dotdot",
            raw_tar(&[good(), entry("../../evil", b'0', "", b"x")], true),
            "'..'",
        ),
        (
            "dotdot-inner",
            raw_tar(&[entry("./a/../../evil", b'0', "", b"x")], true),
            "'..'",
        ),
        (
            "absolute",
            raw_tar(&[entry("/tmp/evil-abs", b'0', "", b"x")], true),
            "absolute path",
        ),
        (
            "symlink-escape",
            raw_tar(&[entry("esc", b'2', "../../../../../etc", b"")], true),
            "symlink pointing outside",
        ),
        (
            "through-symlink",
            raw_tar(
                &[
                    entry("link", b'2', &outside_s, b""),
                    entry("link/evil", b'0', "", b"x"),
                ],
                true,
            ),
            "goes through a symlink",
        ),
        (
            "hardlink-abs",
            raw_tar(&[entry("hl", b'1', "/etc/passwd", b"")], true),
            "hardlink pointing outside",
        ),
        (
            "hardlink-dotdot",
            raw_tar(&[entry("hl", b'1', "../../etc/passwd", b"")], true),
            "hardlink pointing outside",
        ),
        (
            "hardlink-missing",
            raw_tar(&[entry("hl", b'1', "not/there", b"")], true),
            "not earlier in the layer",
        ),
        (
            "char-device",
            raw_tar(&[good(), device(b'3')], true),
            "device node",
        ),
        (
            "block-device",
            raw_tar(&[device(b'4')], true),
            "device node",
        ),
        (
            "bad-whiteout",
            raw_tar(&[entry("d/.wh..", b'0', "", b"")], true),
            "invalid whiteout",
        ),
        (
            "truncated-entry",
            raw_tar(&[good(), truncated], false),
            "truncated",
        ),
        (
            "garbage",
            b"this is not a tar archive at all, just some text that is long enough".repeat(20),
            "not a valid tar",
        ),
    ];
    for (label, data, want) in &cases {
        assert_refused(&d, label, data, want);
    }
    // A gzip stream cut in the middle.
    let tar = std::fs::read(common::busybox_tar()).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    let gz = gz.finish().unwrap();
    assert_refused(&d, "truncated-gzip", &gz[..gz.len() / 2], "archive");
    let zs = zstd::encode_all(&tar[..], 3).unwrap();
    assert_refused(&d, "truncated-zstd", &zs[..zs.len() / 2], "archive");

    assert!(
        std::fs::read_dir(&outside).unwrap().next().is_none(),
        "something was written outside the root"
    );
    assert!(!Path::new("/tmp/evil-abs").exists());
    d.assert_check_clean();
    // The daemon is still healthy and a good import still works.
    d.import_busybox("good");
    d.assert_check_clean();
}
