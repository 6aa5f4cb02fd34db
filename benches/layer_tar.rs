//! Layer writer hot path: `layer_diff_id` (tar to a hashing sink),
//! `write_layer_tar` to `io::sink()`, and `split::replay` (the exact tar of
//! an imported layer again, from its tar-split, hashed: what `save` does),
//! on many small files and one large one.
//! sha256 bounds both; compare with `time sha256sum` of the large file.
//! And the whiteout boundary both ways, on 500 deleted files and 500
//! opaque directories: overlay's form (0/0 character devices,
//! `trusted.overlay.opaque`) to OCI's (`.wh.NAME`, `.wh..wh..opq`) in
//! `write_layer_tar`, and back in `extract_layer` (as root).
//!
//! `cargo bench --bench layer_tar`. The trees are created once in a
//! temporary directory under the target directory (not tmpfs).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use amber::archive::split::{replay, SPLIT_FILE};
use amber::archive::{extract_layer, layer_diff_id, write_layer_tar, ExtractOptions};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

/// Size of the single large file.
const BIG: usize = 200 * 1024 * 1024;

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
}

/// 1000 files of 4 KiB in 10 directories; returns the data bytes.
fn many_files(dir: &Path) -> u64 {
    let data: Vec<u8> = (0..4096u32).map(|i| (i * 31 % 251) as u8).collect();
    for i in 0..1000 {
        let d = dir.join(format!("d{}", i % 10));
        fs::create_dir_all(&d).expect("mkdir");
        fs::write(d.join(format!("f{i}")), &data).expect("write file");
    }
    1000 * 4096
}

/// One 200 MiB file of non-repeating bytes; returns its size.
fn one_big_file(dir: &Path) -> u64 {
    let mut data = vec![0u8; BIG];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for chunk in data.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    fs::create_dir_all(dir).expect("mkdir");
    fs::write(dir.join("big"), &data).expect("write big file");
    BIG as u64
}

/// 500 deleted files (overlay whiteouts: 0/0 character devices) and 500
/// opaque directories with one file each, as a container's upper dir holds
/// them after deletions; returns the number of whiteouts.
fn whiteouts(dir: &Path) -> u64 {
    use nix::sys::stat::{mknod, Mode, SFlag};
    for i in 0..500 {
        let d = dir.join(format!("d{}", i % 10));
        fs::create_dir_all(&d).expect("mkdir");
        mknod(
            &d.join(format!("gone{i}")),
            SFlag::S_IFCHR,
            Mode::empty(),
            0,
        )
        .expect("mknod 0/0");
        let o = dir.join(format!("opaque{i}"));
        fs::create_dir(&o).expect("mkdir");
        xattr::set(&o, "trusted.overlay.opaque", b"y").expect("opaque xattr");
        fs::write(o.join("kept"), b"x").expect("write file");
    }
    1000
}

fn bench_whiteouts(c: &mut Criterion, work: &Path) {
    let upper = work.join("whiteouts");
    let n = whiteouts(&upper);
    let mut tar = Vec::new();
    write_layer_tar(&upper, &mut tar).expect("tar");
    // The conversion happened: OCI names in the tar, no device entries.
    let mut names = Vec::new();
    for e in tar::Archive::new(&tar[..]).entries().expect("entries") {
        let e = e.expect("entry");
        assert!(
            !e.header().entry_type().is_character_special(),
            "a device in the tar"
        );
        names.push(e.path().expect("path").to_string_lossy().into_owned());
    }
    assert!(
        names.iter().any(|p| p == "d0/.wh.gone0"),
        "no .wh.gone0 in {names:?}"
    );
    assert!(
        names.iter().any(|p| p == "opaque0/.wh..wh..opq"),
        "no opaque marker"
    );
    let mut group = c.benchmark_group("whiteouts");
    group.sample_size(20);
    group.throughput(Throughput::Elements(n));
    group.bench_function("overlay_to_oci/500+500", |b| {
        b.iter(|| write_layer_tar(&upper, io::sink()).expect("write_layer_tar"))
    });
    // Each extraction into a new directory, none removed until the end:
    // on the root ext4 here, creating files right after removing many is
    // slow for reasons of its own (../shared/PEERS.md).
    let dests = tempfile::tempdir_in(work).expect("tempdir");
    let mut next = 0u64;
    group.bench_function("oci_to_overlay/500+500", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                next += 1;
                let d = dests.path().join(next.to_string());
                fs::create_dir(&d).expect("mkdir");
                let t = std::time::Instant::now();
                extract_layer(&tar[..], &d, &ExtractOptions::default()).expect("extract");
                total += t.elapsed();
            }
            total
        })
    });
    group.finish();
}

fn bench_layer_tar(c: &mut Criterion) {
    let target = target_dir();
    fs::create_dir_all(&target).expect("target dir");
    let work = tempfile::Builder::new()
        .prefix("layer_tar_bench")
        .tempdir_in(&target)
        .expect("tempdir");
    let small = work.path().join("1000x4KiB");
    let big = work.path().join("1x200MiB");
    let inputs = [
        ("1000x4KiB", many_files(&small), small),
        ("1x200MiB", one_big_file(&big), big),
    ];
    eprintln!("bench trees in {}", work.path().display());
    let mut group = c.benchmark_group("layer_tar");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(2));
    group.measurement_time(Duration::from_secs(15));
    for (name, bytes, dir) in &inputs {
        // The same tree imported from its tar, with a tar-split.
        let imported = work.path().join(format!("imported-{name}"));
        let diff = imported.join("diff");
        fs::create_dir_all(&diff).expect("mkdir");
        let mut tar = Vec::new();
        write_layer_tar(dir, &mut tar).expect("tar");
        let opts = ExtractOptions {
            split: Some(imported.join(SPLIT_FILE)),
            ..Default::default()
        };
        extract_layer(&tar[..], &diff, &opts).expect("extract");
        drop(tar);
        group.throughput(Throughput::Bytes(*bytes));
        group.bench_function(format!("split_replay/{name}"), |b| {
            b.iter(|| replay(&diff, &imported.join(SPLIT_FILE), io::sink()).expect("replay"))
        });
        group.bench_function(format!("layer_diff_id/{name}"), |b| {
            b.iter(|| layer_diff_id(dir).expect("layer_diff_id"))
        });
        group.bench_function(format!("write_layer_tar_sink/{name}"), |b| {
            b.iter(|| write_layer_tar(dir, io::sink()).expect("write_layer_tar"))
        });
    }
    group.finish();
    bench_whiteouts(c, work.path());
}

criterion_group!(benches, bench_layer_tar);
criterion_main!(benches);
