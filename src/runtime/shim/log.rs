//! The container log: JSON lines in the format of Docker's `json-file` driver.
//!
//! One record per line: `{"log":"hello\n","stream":"stdout","time":"2026-11-27T22:40:00.123456789Z"}`.
//! `log` holds the bytes of one output line including its `\n` (invalid
//! UTF-8 replaced by U+FFFD); a line longer than [`MAX_LINE`] is split into
//! several records, only the last of which ends in `\n`, as Docker does.

use std::fs::File;
use std::io::{BufRead, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::runtime::error::{Result, RuntimeError};

/// Longest record payload before a partial line is flushed (Docker: 16 KiB).
pub const MAX_LINE: usize = 16 * 1024;

/// Which output stream a record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Standard output (or the tty).
    Stdout,
    /// Standard error.
    Stderr,
}

impl Stream {
    fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// One log record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogRecord {
    /// The line (with its trailing newline when complete).
    pub log: String,
    /// `stdout` or `stderr`.
    pub stream: String,
    /// RFC 3339 UTC timestamp with nanoseconds.
    pub time: String,
}

/// Appends output to a log file, line by line.
pub struct LogWriter {
    file: File,
    partial: [Vec<u8>; 2],
}

impl LogWriter {
    /// Opens (appending) the log file.
    pub fn open(path: &Path) -> Result<LogWriter> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| RuntimeError::io("open log", path, e))?;
        Ok(LogWriter {
            file,
            partial: [Vec::new(), Vec::new()],
        })
    }

    /// Adds output bytes of `stream`; complete lines are written at once.
    pub fn write(&mut self, stream: Stream, data: &[u8]) -> Result<()> {
        let idx = stream as usize;
        self.partial[idx].extend_from_slice(data);
        while let Some(pos) = self.partial[idx].iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.partial[idx].drain(..=pos).collect();
            self.record(stream, &line)?;
        }
        while self.partial[idx].len() >= MAX_LINE {
            let chunk: Vec<u8> = self.partial[idx].drain(..MAX_LINE).collect();
            self.record(stream, &chunk)?;
        }
        Ok(())
    }

    /// Writes out unterminated lines (at exit).
    pub fn flush(&mut self) -> Result<()> {
        for stream in [Stream::Stdout, Stream::Stderr] {
            let rest = std::mem::take(&mut self.partial[stream as usize]);
            if !rest.is_empty() {
                self.record(stream, &rest)?;
            }
        }
        Ok(())
    }

    fn record(&mut self, stream: Stream, bytes: &[u8]) -> Result<()> {
        let rec = LogRecord {
            log: String::from_utf8_lossy(bytes).into_owned(),
            stream: stream.name().into(),
            time: super::now_rfc3339(),
        };
        // invariant: a struct of three strings always serializes.
        let mut line = serde_json::to_vec(&rec).expect("serializable");
        line.push(b'\n');
        self.file
            .write_all(&line)
            .map_err(|e| RuntimeError::io("write", "container log", e))
    }
}

/// Reads every record of a log file.
pub fn read_log(path: &Path) -> Result<Vec<LogRecord>> {
    let f = File::open(path).map_err(|e| RuntimeError::io("open log", path, e))?;
    let mut out = Vec::new();
    for line in std::io::BufReader::new(f).lines() {
        let line = line.map_err(|e| RuntimeError::io("read log", path, e))?;
        let rec = serde_json::from_str(&line).map_err(|source| RuntimeError::Json {
            path: path.to_path_buf(),
            source,
        })?;
        out.push(rec);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_partials() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log");
        let mut w = LogWriter::open(&p).unwrap();
        w.write(Stream::Stdout, b"hel").unwrap();
        w.write(Stream::Stderr, b"oops\n").unwrap();
        w.write(Stream::Stdout, b"lo\nwor").unwrap();
        w.write(Stream::Stdout, &vec![b'x'; MAX_LINE]).unwrap();
        w.flush().unwrap();
        let recs = read_log(&p).unwrap();
        assert_eq!(recs[0].log, "oops\n");
        assert_eq!(recs[0].stream, "stderr");
        assert_eq!(recs[1].log, "hello\n");
        assert_eq!(recs[2].log.len(), MAX_LINE);
        assert!(recs[2].log.starts_with("wor"));
        assert_eq!(recs[3].log, "xxx");
        assert!(
            recs[1].time.ends_with('Z') && recs[1].time.len() == 30,
            "{}",
            recs[1].time
        );
    }
}
