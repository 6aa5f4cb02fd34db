//! Import hot path: unpacking a layer tar (hashing the stream for its
//! diff_id at the same time), plain and zstd-compressed.
//!
//! `cargo bench --bench import`. Uses the busybox rootfs from
//! `tests/images/busybox.sh` (about 2 MB, 290 entries) plus a synthetic
//! layer of 1000 × 4 KiB files.

use std::io::Cursor;
use std::path::Path;
use std::process::Command;

use amber::archive::{decompress, extract_layer, ExtractOptions};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn busybox_tar(dir: &Path) -> Vec<u8> {
    let tar = dir.join("busybox.tar");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/images/busybox.sh");
    let st = Command::new(script).arg(&tar).status().expect("busybox.sh");
    assert!(st.success());
    std::fs::read(tar).expect("read busybox tar")
}

fn many_files_tar() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let data = vec![0x5au8; 4096];
    for i in 0..1000 {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_cksum();
        b.append_data(&mut h, format!("d{}/f{i}", i % 10), &data[..])
            .expect("append");
    }
    b.into_inner().expect("finish tar")
}

fn bench_extract(c: &mut Criterion) {
    let work = tempfile::tempdir().expect("tempdir");
    let inputs = [
        ("busybox", busybox_tar(work.path())),
        ("1000x4KiB", many_files_tar()),
    ];
    let mut group = c.benchmark_group("extract_layer");
    group.sample_size(20);
    let mut n = 0u64;
    for (name, tar) in &inputs {
        let zst = zstd::encode_all(&tar[..], 1).expect("zstd");
        group.throughput(Throughput::Bytes(tar.len() as u64));
        for (kind, data) in [("plain", tar.clone()), ("zstd", zst)] {
            group.bench_function(format!("{name}/{kind}"), |b| {
                b.iter(|| {
                    n += 1;
                    let dest = work.path().join(format!("x{n}"));
                    std::fs::create_dir(&dest).expect("mkdir");
                    let (_, r) = decompress(Cursor::new(data.clone())).expect("decompress");
                    extract_layer(r, &dest, &ExtractOptions::default()).expect("extract")
                })
            });
        }
    }
    group.finish();
}

fn bench_reference(c: &mut Criterion) {
    c.bench_function("reference_parse", |b| {
        b.iter(|| amber::types::Reference::parse("localhost:5000/team/app:v1.2.3").expect("parse"))
    });
}

criterion_group!(benches, bench_extract, bench_reference);
criterion_main!(benches);
