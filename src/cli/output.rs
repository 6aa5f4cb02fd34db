//! Output helpers shared by commands: Docker-style sizes and ages, tables,
//! and `--format` (json or a Go template).

use serde::Serialize;
use serde_json::Value;

/// Sizes as Docker prints them (decimal units, 3 significant digits).
pub fn human_size(bytes: i64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut v = bytes.max(0) as f64;
    let mut i = 0;
    while v >= 1000.0 && i < units.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    // Docker: HumanSizeWithPrecision(size, 3), i.e. "%.3g".
    let s = match v {
        v if v >= 99.95 => format!("{v:.0}"),
        v if v >= 9.995 => format!("{v:.1}"),
        v => format!("{v:.2}"),
    };
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        &s
    };
    format!("{s}{}", units[i])
}

/// "5 minutes ago", as Docker's `CreatedSince`.
pub fn human_since(unix: i64) -> String {
    let secs = (chrono::Utc::now().timestamp() - unix).max(0);
    let (n, unit) = match secs {
        s if s < 1 => return "Less than a second ago".into(),
        s if s < 60 => (s, "second"),
        s if s < 3600 => (s / 60, "minute"),
        s if s < 86400 * 2 => (s / 3600, "hour"),
        s if s < 86400 * 14 => (s / 86400, "day"),
        s if s < 86400 * 60 => (s / 86400 / 7, "week"),
        s if s < 86400 * 365 * 2 => (s / 86400 / 30, "month"),
        s => (s / 86400 / 365, "year"),
    };
    let article = match (n, unit) {
        (1, "hour") => "An".to_string(),
        (1, _) => "1".to_string(),
        (n, _) => n.to_string(),
    };
    let plural = if n == 1 { "" } else { "s" };
    format!("{article} {unit}{plural} ago")
}

/// Print rows as an aligned table with Docker's three-space gutters.
pub fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let last = cells.len() - 1;
        let mut out = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i == last {
                out.push_str(c);
            } else {
                out.push_str(&format!("{c:<w$}   ", w = widths[i]));
            }
        }
        println!("{}", out.trim_end());
    };
    line(header.to_vec());
    for r in rows {
        line(r.iter().map(String::as_str).collect());
    }
}

/// What `--format` asks for.
pub enum Format {
    /// Human table or text (no flag).
    Default,
    /// `--format json`.
    Json,
    /// `--format '{{...}}'`.
    Template(super::template::Template),
}

impl Format {
    /// Parse the flag's value.
    pub fn parse(flag: Option<&str>) -> anyhow::Result<Format> {
        Ok(match flag {
            None | Some("") | Some("table") => Format::Default,
            Some("json") | Some("{{json .}}") => Format::Json,
            Some(t) => {
                let t = t.strip_prefix("table ").unwrap_or(t);
                Format::Template(
                    super::template::Template::parse(t).map_err(|e| anyhow::anyhow!("{e}"))?,
                )
            }
        })
    }

    /// Render one value with a template (callers handle the other cases).
    pub fn render<T: Serialize>(tpl: &super::template::Template, v: &T) -> anyhow::Result<String> {
        let value: Value = serde_json::to_value(v)?;
        tpl.render(&value).map_err(|e| anyhow::anyhow!("{e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_like_docker() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(2_140_160), "2.14MB");
        assert_eq!(human_size(123_456_789), "123MB");
        assert_eq!(human_size(1_000), "1kB");
    }
}
