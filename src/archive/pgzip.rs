//! gzip on every core: the stream is cut into 1 MiB blocks, each block
//! becomes a complete gzip member compressed on a worker thread, and the
//! members are written in order. A multi-member gzip file is one gzip
//! stream to every reader (RFC 1952 §2.2; Go's, zlib's, flate2's
//! `MultiGzDecoder`). The output depends only on the input, not on the
//! number of threads, so a cached blob's digest is stable.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::mpsc::{channel, sync_channel, Receiver, SyncSender};
use std::thread::JoinHandle;

/// Input bytes per gzip member.
const BLOCK: usize = 1 << 20;

/// A `Write` that gzips what it is given, in parallel.
pub struct ParallelGzip<W: Write> {
    /// Taken by `finish`.
    out: Option<W>,
    level: u32,
    block: Vec<u8>,
    next_seq: u64,
    next_out: u64,
    jobs: Option<SyncSender<(u64, Vec<u8>)>>,
    done: Receiver<(u64, io::Result<Vec<u8>>)>,
    ready: BTreeMap<u64, Vec<u8>>,
    workers: Vec<JoinHandle<()>>,
    in_flight: u64,
    max_in_flight: u64,
}

/// Whether a block is not worth compressing: its first 64 KiB shrink by
/// less than 3 % (random or already compressed data). Such a block is
/// stored (level 0), at copying speed; the choice depends on the data
/// only, so the output stays deterministic.
fn incompressible(data: &[u8], level: u32) -> bool {
    const SAMPLE: usize = 64 * 1024;
    if level == 0 || data.len() < SAMPLE {
        return false;
    }
    let mut enc = flate2::write::DeflateEncoder::new(
        Vec::with_capacity(SAMPLE + 1024),
        flate2::Compression::new(level),
    );
    match enc.write_all(&data[..SAMPLE]).and_then(|()| enc.finish()) {
        Ok(out) => out.len() * 100 > SAMPLE * 97,
        Err(_) => false,
    }
}

impl<W: Write> ParallelGzip<W> {
    /// Compress into `out` at `level` (0–9) with one worker per core.
    pub fn new(out: W, level: u32) -> Self {
        let n = std::thread::available_parallelism().map_or(1, |n| n.get());
        let (jtx, jrx) = sync_channel::<(u64, Vec<u8>)>(n * 2);
        let jrx = std::sync::Arc::new(std::sync::Mutex::new(jrx));
        let (dtx, drx) = channel();
        let workers = (0..n)
            .map(|_| {
                let (jrx, dtx) = (jrx.clone(), dtx.clone());
                std::thread::spawn(move || loop {
                    let job = jrx.lock().unwrap_or_else(|p| p.into_inner()).recv();
                    let Ok((seq, data)) = job else { return };
                    let level = if incompressible(&data, level) {
                        0
                    } else {
                        level
                    };
                    let mut enc = flate2::GzBuilder::new().write(
                        Vec::with_capacity(data.len() / 2 + 64),
                        flate2::Compression::new(level),
                    );
                    let r = enc.write_all(&data).and_then(|()| enc.finish());
                    if dtx.send((seq, r)).is_err() {
                        return;
                    }
                })
            })
            .collect();
        ParallelGzip {
            out: Some(out),
            level,
            block: Vec::with_capacity(BLOCK),
            next_seq: 0,
            next_out: 0,
            jobs: Some(jtx),
            done: drx,
            ready: BTreeMap::new(),
            workers,
            in_flight: 0,
            max_in_flight: 2 * n as u64 + 2,
        }
    }

    /// The compression level.
    pub fn level(&self) -> u32 {
        self.level
    }

    fn submit(&mut self) -> io::Result<()> {
        let data = std::mem::replace(&mut self.block, Vec::with_capacity(BLOCK));
        let jobs = self
            .jobs
            .as_ref()
            .ok_or_else(|| io::Error::other("compressor finished"))?;
        jobs.send((self.next_seq, data))
            .map_err(|_| io::Error::other("compression worker stopped"))?;
        self.next_seq += 1;
        self.in_flight += 1;
        while self.in_flight >= self.max_in_flight {
            self.collect_one()?;
        }
        Ok(())
    }

    /// Wait for one finished member, then write every member now in order.
    fn collect_one(&mut self) -> io::Result<()> {
        let (seq, r) = self
            .done
            .recv()
            .map_err(|_| io::Error::other("compression worker stopped"))?;
        self.in_flight -= 1;
        self.ready.insert(seq, r?);
        let out = self
            .out
            .as_mut()
            .ok_or_else(|| io::Error::other("compressor finished"))?;
        while let Some(member) = self.ready.remove(&self.next_out) {
            out.write_all(&member)?;
            self.next_out += 1;
        }
        Ok(())
    }

    /// Compress what is left, write every member, and return the output.
    pub fn finish(mut self) -> io::Result<W> {
        if !self.block.is_empty() || self.next_seq == 0 {
            self.submit()?;
        }
        while self.in_flight > 0 {
            self.collect_one()?;
        }
        self.jobs = None;
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
        let mut out = self
            .out
            .take()
            .ok_or_else(|| io::Error::other("compressor finished"))?;
        out.flush()?;
        Ok(out)
    }
}

impl<W: Write> Write for ParallelGzip<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = BLOCK - self.block.len();
        let n = room.min(buf.len());
        self.block.extend_from_slice(&buf[..n]);
        if self.block.len() == BLOCK {
            self.submit()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<W: Write> Drop for ParallelGzip<W> {
    fn drop(&mut self) {
        self.jobs = None;
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn round_trips_and_is_deterministic() {
        let mut data = vec![0u8; 3 * BLOCK + 12345];
        for (i, b) in data.iter_mut().enumerate() {
            *b = (i * 7 % 251) as u8;
        }
        let gz = |d: &[u8]| {
            let mut z = ParallelGzip::new(Vec::new(), 1);
            z.write_all(d).unwrap();
            z.finish().unwrap()
        };
        let a = gz(&data);
        assert_eq!(a, gz(&data), "same bytes every time");
        let mut back = Vec::new();
        flate2::read::MultiGzDecoder::new(&a[..])
            .read_to_end(&mut back)
            .unwrap();
        assert!(back == data);
        // Random data is stored, not compressed, and still round-trips.
        let mut noise = vec![0u8; 2 * BLOCK];
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for c in noise.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            c.copy_from_slice(&x.to_le_bytes()[..c.len()]);
        }
        assert!(incompressible(&noise, 1) && !incompressible(&data, 1));
        let z = gz(&noise);
        let mut back = Vec::new();
        flate2::read::MultiGzDecoder::new(&z[..])
            .read_to_end(&mut back)
            .unwrap();
        assert!(back == noise);
        let empty = gz(b"");
        let mut back = Vec::new();
        flate2::read::MultiGzDecoder::new(&empty[..])
            .read_to_end(&mut back)
            .unwrap();
        assert!(back.is_empty());
    }
}
