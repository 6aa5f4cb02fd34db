//! Go's and Docker's builtin functions, over evaluated arguments.

use std::borrow::Cow;
use std::cmp::Ordering;

use serde_json::{Number, Value};

use super::exec::{truth_value, Val};
use super::printf::{as_int, go_sprint, go_sprintf, go_string, go_type, int_of, write_json};

/// Why a builtin failed: `Usage` reads as Go's argument checks, `Failed`
/// gets Go's `error calling NAME:` prefix.
pub(super) enum CallError {
    Usage(String),
    Failed(String),
}

type CallResult<T> = Result<T, CallError>;

fn failed<T>(message: impl Into<String>) -> CallResult<T> {
    Err(CallError::Failed(message.into()))
}

fn arity(name: &str, args: &[Cow<Value>], want: usize) -> CallResult<()> {
    if args.len() == want {
        return Ok(());
    }
    let msg = format!(
        "wrong number of args for {name}: want {want} got {}",
        args.len()
    );
    Err(CallError::Usage(msg))
}

fn want_str(v: &Value) -> CallResult<&str> {
    match v {
        Value::String(s) => Ok(s),
        Value::Null => Err(CallError::Usage("invalid value; expected string".into())),
        other => Err(CallError::Usage(format!(
            "wrong type for value; expected string; got {}",
            go_type(other)
        ))),
    }
}

fn want_int(v: &Value) -> CallResult<i128> {
    match v {
        Value::Number(n) => int_of(n).map_or_else(|| failed(format!("non-integer {n}")), Ok),
        other => Err(CallError::Usage(format!(
            "wrong type for value; expected int; got {}",
            go_type(other)
        ))),
    }
}

pub(super) fn builtin<'d>(name: &str, args: Vec<Val<'d>>) -> CallResult<Val<'d>> {
    let args: Vec<Cow<'d, Value>> = args
        .into_iter()
        .map(|a| a.unwrap_or(Cow::Owned(Value::Null)))
        .collect();
    let text = |s: String| Ok(Some(Cow::Owned(Value::String(s))));
    match name {
        "index" => index(args),
        "not" => {
            arity(name, &args, 1)?;
            Ok(Some(Cow::Owned(Value::Bool(!truth_value(&args[0])))))
        }
        "len" => {
            arity(name, &args, 1)?;
            Ok(Some(Cow::Owned(Value::from(go_len(&args[0])?))))
        }
        "slice" => Ok(Some(Cow::Owned(slice(&args)?))),
        "eq" | "ne" | "lt" | "le" | "gt" | "ge" => {
            Ok(Some(Cow::Owned(Value::Bool(compare(name, &args)?))))
        }
        "print" => text(go_sprint(&args)),
        "println" => {
            let parts: Vec<String> = args.iter().map(|a| go_string(a)).collect();
            text(parts.join(" ") + "\n")
        }
        "printf" => match args.split_first() {
            Some((format, rest)) => text(go_sprintf(want_str(format)?, rest)),
            None => Err(CallError::Usage(
                "wrong number of args for printf: want at least 1 got 0".into(),
            )),
        },
        "json" => {
            arity(name, &args, 1)?;
            let mut out = String::new();
            write_json(&mut out, &args[0]);
            text(out)
        }
        _ => docker_string_func(name, &args),
    }
}

/// Docker's string helpers (`cli/templates/templates.go`).
fn docker_string_func<'d>(name: &str, args: &[Cow<Value>]) -> CallResult<Val<'d>> {
    let text = |s: String| Ok(Some(Cow::Owned(Value::String(s))));
    match name {
        "join" => {
            arity(name, args, 2)?;
            let sep = want_str(&args[1])?;
            match args[0].as_ref() {
                Value::Array(a) => text(a.iter().map(go_string).collect::<Vec<_>>().join(sep)),
                Value::Null => text(String::new()),
                other => Err(CallError::Usage(format!(
                    "wrong type for value; expected []string; got {}",
                    go_type(other)
                ))),
            }
        }
        "split" => {
            arity(name, args, 2)?;
            let (s, sep) = (want_str(&args[0])?, want_str(&args[1])?);
            let parts: Vec<Value> = if sep.is_empty() {
                s.chars().map(|c| Value::String(c.to_string())).collect()
            } else {
                s.split(sep).map(Value::from).collect()
            };
            Ok(Some(Cow::Owned(Value::Array(parts))))
        }
        "upper" | "lower" | "title" => {
            arity(name, args, 1)?;
            let s = want_str(&args[0])?;
            text(match name {
                "upper" => s.to_uppercase(),
                "lower" => s.to_lowercase(),
                _ => go_title(s),
            })
        }
        "pad" => {
            arity(name, args, 3)?;
            text(pad_with_space(
                want_str(&args[0])?,
                want_int(&args[1])?,
                want_int(&args[2])?,
            ))
        }
        "truncate" => {
            arity(name, args, 2)?;
            let n = usize::try_from(want_int(&args[1])?).unwrap_or(0);
            text(want_str(&args[0])?.chars().take(n).collect())
        }
        _ => failed(format!("function {name:?} not defined")),
    }
}

/// Docker's `pad`: spaces before and after, nothing for an empty string.
fn pad_with_space(s: &str, before: i128, after: i128) -> String {
    if s.is_empty() {
        return String::new();
    }
    let spaces = |n: i128| " ".repeat(usize::try_from(n).unwrap_or(0));
    spaces(before) + s + &spaces(after)
}

fn go_title(s: &str) -> String {
    // Go's strings.Title: a letter after a separator starts a word.
    let is_sep = |c: char| match c {
        c if c.is_ascii() => !(c.is_ascii_alphanumeric() || c == '_'),
        c if c.is_alphanumeric() => false,
        c => c.is_whitespace(),
    };
    let mut prev_sep = true;
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if prev_sep {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev_sep = is_sep(c);
    }
    out
}

fn go_len(v: &Value) -> CallResult<usize> {
    match v {
        Value::String(s) => Ok(s.len()),
        Value::Array(a) => Ok(a.len()),
        Value::Object(m) => Ok(m.len()),
        Value::Null => failed("len of nil pointer"),
        other => failed(format!("len of type {}", go_type(other))),
    }
}

fn index(mut args: Vec<Cow<'_, Value>>) -> CallResult<Val<'_>> {
    if args.is_empty() {
        let msg = "wrong number of args for index: want at least 1 got 0";
        return Err(CallError::Usage(msg.into()));
    }
    let keys = args.split_off(1);
    let mut cur = args.pop();
    for key in &keys {
        cur = match cur {
            None => return failed("index of untyped nil"),
            Some(Cow::Borrowed(b)) => index_one(b, key)?,
            Some(Cow::Owned(o)) => index_one(&o, key)?.map(|c| Cow::Owned(c.into_owned())),
        };
    }
    Ok(cur)
}

fn index_one<'v>(item: &'v Value, key: &Value) -> CallResult<Option<Cow<'v, Value>>> {
    let position = |len: usize, what: &str| match key {
        Value::Number(n) => match int_of(n) {
            Some(i) => usize::try_from(i)
                .ok()
                .filter(|&i| i < len)
                .map_or_else(|| failed(format!("index out of range: {i}")), Ok),
            None => failed(format!("cannot index {what} with type float64")),
        },
        other => failed(format!("cannot index {what} with type {}", go_type(other))),
    };
    match item {
        Value::Array(a) => Ok(Some(Cow::Borrowed(&a[position(a.len(), "slice/array")?]))),
        Value::String(s) => Ok(Some(Cow::Owned(Value::from(
            s.as_bytes()[position(s.len(), "string")?],
        )))),
        Value::Object(m) => match key {
            Value::String(k) => Ok(m.get(k).map(Cow::Borrowed)),
            other => failed(format!(
                "value has type {}; should be string",
                go_type(other)
            )),
        },
        Value::Null => failed("index of untyped nil"),
        other => failed(format!("can't index item of type {}", go_type(other))),
    }
}

/// Go's `slice x`, `slice x i`, `slice x i j`, `slice x i j k`.
fn slice(args: &[Cow<Value>]) -> CallResult<Value> {
    let Some((item, idx)) = args.split_first() else {
        let msg = "wrong number of args for slice: want at least 1 got 0";
        return Err(CallError::Usage(msg.into()));
    };
    let len = match item.as_ref() {
        Value::String(s) => s.len(),
        Value::Array(a) => a.len(),
        Value::Null => return failed("slice of untyped nil"),
        other => return failed(format!("can't slice item of type {}", go_type(other))),
    };
    if idx.len() > 3 {
        return failed(format!("too many slice indexes: {}", idx.len()));
    }
    let mut bounds = [0, len, len];
    for (slot, v) in bounds.iter_mut().zip(idx) {
        let i = want_int(v)?;
        *slot = usize::try_from(i)
            .ok()
            .filter(|&i| i <= len)
            .map_or_else(|| failed(format!("index out of range: {i}")), Ok)?;
    }
    let [lo, hi, max] = bounds;
    if lo > hi || hi > max {
        return failed(format!("invalid slice index: {lo} > {hi}"));
    }
    match item.as_ref() {
        Value::String(_) if idx.len() == 3 => failed("cannot 3-index slice a string"),
        Value::String(s) => s
            .get(lo..hi)
            .map(Value::from)
            .map_or_else(|| failed("slice splits a UTF-8 character"), Ok),
        Value::Array(a) => Ok(Value::Array(a[lo..hi].to_vec())),
        _ => failed("can't slice item"),
    }
}

fn compare(name: &str, args: &[Cow<Value>]) -> CallResult<bool> {
    if name == "eq" {
        let Some((first, rest)) = args.split_first().filter(|(_, r)| !r.is_empty()) else {
            return failed("missing argument for comparison");
        };
        for other in rest {
            if go_eq(first, other)? {
                return Ok(true);
            }
        }
        return Ok(false);
    }
    arity(name, args, 2)?;
    if name == "ne" {
        return Ok(!go_eq(&args[0], &args[1])?);
    }
    let ord = match (args[0].as_ref(), args[1].as_ref()) {
        (Value::Number(a), Value::Number(b)) => num_cmp(a, b),
        (Value::String(a), Value::String(b)) => a.cmp(b),
        (Value::Number(_) | Value::String(_), Value::Number(_) | Value::String(_)) => {
            return failed("incompatible types for comparison")
        }
        _ => return failed("invalid type for comparison"),
    };
    Ok(match name {
        "lt" => ord.is_lt(),
        "le" => ord.is_le(),
        "gt" => ord.is_gt(),
        _ => ord.is_ge(),
    })
}

fn go_eq(a: &Value, b: &Value) -> CallResult<bool> {
    match (a, b) {
        (Value::Null, Value::Null) => Ok(true),
        (Value::Null, _) | (_, Value::Null) => Ok(false),
        (Value::Number(x), Value::Number(y)) => Ok(num_cmp(x, y).is_eq()),
        (Value::String(x), Value::String(y)) => Ok(x == y),
        (Value::Bool(x), Value::Bool(y)) => Ok(x == y),
        (Value::Array(_) | Value::Object(_), _) => {
            failed(format!("non-comparable type {}", go_type(a)))
        }
        (_, Value::Array(_) | Value::Object(_)) => {
            failed(format!("non-comparable type {}", go_type(b)))
        }
        _ => failed("incompatible types for comparison"),
    }
}

fn num_cmp(a: &Number, b: &Number) -> Ordering {
    match (as_int(a), as_int(b)) {
        (Some(x), Some(y)) => x.cmp(&y),
        _ => {
            let (x, y) = (a.as_f64().unwrap_or(0.0), b.as_f64().unwrap_or(0.0));
            x.partial_cmp(&y).unwrap_or(Ordering::Equal)
        }
    }
}
