//! Argument forms of single instructions: ARG names and defaults, EXPOSE
//! ports, STOPSIGNAL, HEALTHCHECK and its durations.

use serde_json::{json, Value};

use super::parser::{self, Instruction};
use super::shell::process_word;
use super::BuildError;

/// A double-quoted word (LABEL keys and values in messages).
pub(super) fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// `ARG a b=1`: names and expanded defaults.
pub(super) fn parse_arg(
    i: &Instruction,
    lookup: &dyn Fn(&str) -> Option<String>,
    esc: char,
) -> Result<Vec<(String, Option<String>)>, BuildError> {
    let mut out = Vec::new();
    for w in parser::raw_words(&i.text(), esc) {
        let (k, v) = match w.split_once('=') {
            Some((k, v)) => (
                k.to_string(),
                Some(process_word(v, lookup, esc).map_err(BuildError::Invalid)?),
            ),
            None => (w.clone(), None),
        };
        if k.is_empty() {
            return Err(BuildError::Invalid("ARG names can not be blank".into()));
        }
        out.push((k, v));
    }
    Ok(out)
}

/// `80`, `80/udp`, `8000-8002/tcp` → Docker's port keys (a range gives one
/// key per port, as Docker's `nat.ParsePortSpecs`).
pub(super) fn port_keys(w: &str) -> Result<Vec<String>, BuildError> {
    let bad = || BuildError::Invalid(format!("Invalid containerPort: {w}"));
    let (port, proto) = w.split_once('/').unwrap_or((w, "tcp"));
    let proto = proto.to_ascii_lowercase();
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(bad());
    }
    let num = |p: &str| p.parse::<u16>().map_err(|_| bad());
    let (lo, hi) = match port.split_once('-') {
        Some((a, b)) => (num(a)?, num(b)?),
        None => (num(port)?, num(port)?),
    };
    if lo > hi {
        return Err(bad());
    }
    Ok((lo..=hi).map(|p| format!("{p}/{proto}")).collect())
}

/// `9`, `KILL`, `SIGKILL`, `SIGRTMIN+3`: what STOPSIGNAL accepts.
pub(super) fn valid_signal(s: &str) -> bool {
    s.parse::<u8>().is_ok_and(|n| n > 0 && n < 65) || {
        let u = s.to_ascii_uppercase();
        let name = u.strip_prefix("SIG").unwrap_or(&u);
        !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '-')
    }
}

/// HEALTHCHECK [--interval=...] CMD ... | NONE → Docker's Healthcheck.
pub(super) fn healthcheck(i: &Instruction) -> Result<Value, BuildError> {
    i.check_flags(&[
        "interval",
        "timeout",
        "start-period",
        "start-interval",
        "retries",
    ])?;
    let text = i.text();
    let text = text.trim();
    let (word, rest) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
    let test = match word.to_ascii_uppercase().as_str() {
        "NONE" if rest.trim().is_empty() => return Ok(json!({"Test": ["NONE"]})),
        "CMD" => match serde_json::from_str::<Vec<String>>(rest.trim()) {
            Ok(v) if rest.trim().starts_with('[') => {
                let mut t = vec!["CMD".to_string()];
                t.extend(v);
                t
            }
            _ if rest.trim().is_empty() => {
                return Err(BuildError::Invalid(
                    "Missing command after HEALTHCHECK CMD".into(),
                ))
            }
            _ => vec!["CMD-SHELL".to_string(), rest.trim().to_string()],
        },
        _ => {
            return Err(BuildError::Invalid(format!(
                "Unknown type {word:?} in HEALTHCHECK (try CMD)"
            )))
        }
    };
    let mut hc = json!({"Test": test});
    for (flag, key) in [
        ("interval", "Interval"),
        ("timeout", "Timeout"),
        ("start-period", "StartPeriod"),
        ("start-interval", "StartInterval"),
    ] {
        if let Some(v) = i.flag(flag) {
            hc[key] = json!(duration_ns(v).ok_or_else(|| BuildError::Invalid(format!(
                "invalid --{flag} {v:?}: use a duration like 30s"
            )))?);
        }
    }
    if let Some(r) = i.flag("retries") {
        hc["Retries"] = json!(r
            .parse::<i64>()
            .map_err(|_| BuildError::Invalid(format!("invalid --retries {r:?}")))?);
    }
    Ok(hc)
}

/// Go duration (`1m30s`, `500ms`, `2h`) in nanoseconds.
pub(super) fn duration_ns(s: &str) -> Option<i64> {
    let mut total = 0f64;
    let mut num = String::new();
    let mut chars = s.chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
            continue;
        }
        let mut unit = c.to_string();
        while let Some(&n) = chars.peek() {
            if n.is_ascii_alphabetic() {
                unit.push(n);
                chars.next();
            } else {
                break;
            }
        }
        let n: f64 = num.parse().ok()?;
        num.clear();
        total += n * match unit.as_str() {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        any = true;
    }
    if !num.is_empty() || !any {
        return None;
    }
    Some(total as i64)
}
