//! Layer writer hot path: `layer_diff_id` (tar to a hashing sink),
//! `write_layer_tar` to `io::sink()`, and `split::replay` (the exact tar of
//! an imported layer again, from its tar-split, hashed: what `save` does),
//! on many small files and one large one.
//! sha256 bounds both; compare with `time sha256sum` of the large file.
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
}

criterion_group!(benches, bench_layer_tar);
criterion_main!(benches);
