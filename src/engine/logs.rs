//! Container logs: reading the shim's JSON-lines log incrementally, with
//! Docker's `since`/`until`/`tail` filters.

use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::PathBuf;

use super::{Engine, EngineError};
use crate::runtime::{LogRecord, Status};

/// What `logs` asks for.
#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    /// Include stdout.
    pub stdout: bool,
    /// Include stderr.
    pub stderr: bool,
    /// Only records at or after (Unix seconds, fractional).
    pub since: Option<f64>,
    /// Only records before (Unix seconds, fractional).
    pub until: Option<f64>,
    /// Only the last N records.
    pub tail: Option<usize>,
}

impl LogOptions {
    /// Whether a record passes the stream and time filters.
    pub fn keep(&self, r: &LogRecord) -> bool {
        let stream_ok =
            (r.stream == "stdout" && self.stdout) || (r.stream == "stderr" && self.stderr);
        if !stream_ok {
            return false;
        }
        let t = record_time(r);
        self.since.is_none_or(|s| t >= s) && self.until.is_none_or(|u| t < u)
    }
}

fn record_time(r: &LogRecord) -> f64 {
    chrono::DateTime::parse_from_rfc3339(&r.time)
        .map(|t| t.timestamp() as f64 + t.timestamp_subsec_nanos() as f64 / 1e9)
        .unwrap_or(0.0)
}

/// Docker's `since`/`until` values: Unix seconds (`1700000000.5`), RFC 3339,
/// or a duration before now (`10m`, `1h30m`, `45s`).
pub fn parse_time(s: &str) -> Result<Option<f64>, EngineError> {
    if s.is_empty() || s == "0" {
        return Ok(None);
    }
    if let Ok(v) = s.parse::<f64>() {
        return Ok(Some(v));
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(Some(
            t.timestamp() as f64 + t.timestamp_subsec_nanos() as f64 / 1e9,
        ));
    }
    let mut total = 0f64;
    let mut num = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
            continue;
        }
        let n: f64 = num.parse().map_err(|_| bad_time(s))?;
        num.clear();
        total += n * match c {
            'h' => 3600.0,
            'm' => 60.0,
            's' => 1.0,
            _ => return Err(bad_time(s)),
        };
    }
    if !num.is_empty() {
        return Err(bad_time(s));
    }
    let now = chrono::Utc::now();
    Ok(Some(
        now.timestamp() as f64 + now.timestamp_subsec_nanos() as f64 / 1e9 - total,
    ))
}

fn bad_time(s: &str) -> EngineError {
    EngineError::InvalidArgument(format!(
        "invalid time value {s:?}: use Unix seconds, RFC 3339 or a duration like 10m"
    ))
}

/// A position in a container's log.
#[derive(Debug)]
pub struct LogCursor {
    /// The log file.
    pub path: PathBuf,
    /// Byte offset of the next unread line.
    pub offset: u64,
    /// The file, held open once it exists: a follower keeps reading what
    /// was written even when the container (and its directory) is removed
    /// meanwhile, as `docker run --rm` clients read their output.
    file: Option<std::fs::File>,
}

impl LogCursor {
    /// A cursor at the start of the log at `path`.
    pub fn new(path: PathBuf) -> LogCursor {
        let file = std::fs::File::open(&path).ok();
        LogCursor {
            path,
            offset: 0,
            file,
        }
    }

    /// Complete records after the cursor; advances it.
    pub fn read_new(&mut self) -> Result<Vec<LogRecord>, EngineError> {
        if self.file.is_none() {
            self.file = std::fs::File::open(&self.path).ok();
        }
        let Some(f) = self.file.as_mut() else {
            return Ok(Vec::new());
        };
        f.seek(SeekFrom::Start(self.offset))
            .map_err(|e| io(&self.path, e))?;
        let mut r = BufReader::new(f);
        let mut out = Vec::new();
        let mut line = String::new();
        loop {
            line.clear();
            let n = r.read_line(&mut line).map_err(|e| io(&self.path, e))?;
            if n == 0 || !line.ends_with('\n') {
                break;
            }
            self.offset += n as u64;
            if let Ok(rec) = serde_json::from_str::<LogRecord>(&line) {
                out.push(rec);
            }
        }
        Ok(out)
    }
}

fn io(path: &std::path::Path, e: std::io::Error) -> EngineError {
    EngineError::Store(crate::store::StoreError::Io {
        op: "read log",
        path: path.to_path_buf(),
        source: e,
    })
}

impl Engine {
    /// The log so far (filtered, tailed) and a cursor to follow from.
    pub fn read_logs(
        &self,
        name: &str,
        opts: &LogOptions,
    ) -> Result<(Vec<LogRecord>, LogCursor, bool), EngineError> {
        let v = self.container_view(name)?;
        let mut cursor = LogCursor::new(self.store.container_dir(&v.rec.id).join("container.log"));
        let mut recs: Vec<LogRecord> = cursor
            .read_new()?
            .into_iter()
            .filter(|r| opts.keep(r))
            .collect();
        if let Some(n) = opts.tail {
            let skip = recs.len().saturating_sub(n);
            recs.drain(..skip);
        }
        Ok((recs, cursor, v.spec.config.tty))
    }

    /// Whether a container is still running (for `logs -f`).
    pub fn is_running(&self, id: &str) -> bool {
        self.container_view(id)
            .map(|v| matches!(v.state.status, Status::Running | Status::Paused))
            .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_docker_time_values() {
        assert_eq!(parse_time("1700000000.5").unwrap(), Some(1_700_000_000.5));
        assert_eq!(
            parse_time("2023-11-14T22:13:20Z").unwrap(),
            Some(1_700_000_000.0)
        );
        let ten_min = parse_time("10m").unwrap().unwrap();
        let now = chrono::Utc::now().timestamp() as f64;
        assert!((now - 600.0 - ten_min).abs() < 5.0);
        assert!(parse_time("1h30m").unwrap().is_some());
        assert!(parse_time("yesterday").is_err());
        assert_eq!(parse_time("").unwrap(), None);
    }
}
