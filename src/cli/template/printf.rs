//! Printing values as Go's `fmt` does: `fmt.Sprint`, `fmt.Sprintf` with its
//! verbs, `strconv.Quote`, float formatting, and Docker's `json`.

use std::borrow::Cow;
use std::iter::Peekable;
use std::str::Chars;

use serde_json::{Map, Number, Value};

pub(super) fn as_int(n: &Number) -> Option<i128> {
    n.as_i64()
        .map(i128::from)
        .or_else(|| n.as_u64().map(i128::from))
}

/// An integer, also from a float without fraction (JSON does not distinguish).
pub(super) fn int_of(n: &Number) -> Option<i128> {
    as_int(n).or_else(|| {
        let f = n.as_f64()?;
        // Truncation is exact here: no fraction and well inside i128.
        (f.fract() == 0.0 && f.abs() < 1e30).then_some(f as i128)
    })
}

/// The Go type a decoded JSON value would have, for error messages.
pub(super) fn go_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(n) if as_int(n).is_some() => "int",
        Value::Number(_) => "float64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

pub(super) fn go_string(v: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, v);
    out
}

fn sorted(m: &Map<String, Value>) -> Vec<(&String, &Value)> {
    let mut kv: Vec<_> = m.iter().collect();
    kv.sort_by(|a, b| a.0.cmp(b.0));
    kv
}

/// `fmt.Sprint(v)` in Go.
pub(super) fn write_value(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("<nil>"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&go_number(n)),
        Value::String(s) => out.push_str(s),
        Value::Array(a) => {
            out.push('[');
            for (i, e) in a.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                write_value(out, e);
            }
            out.push(']');
        }
        Value::Object(m) => {
            out.push_str("map[");
            for (i, (k, e)) in sorted(m).into_iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(k);
                out.push(':');
                write_value(out, e);
            }
            out.push(']');
        }
    }
}

fn go_number(n: &Number) -> String {
    match as_int(n) {
        Some(i) => i.to_string(),
        None => go_float(n.as_f64().unwrap_or(0.0)),
    }
}

/// Go's `%v` for a float64: shortest digits, `%e` form outside 1e-4..1e21.
pub(super) fn go_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0" } else { "0" }.into();
    }
    let sci = format!("{f:e}");
    let (mantissa, exp) = split_exp(&sci);
    // strconv's shortest %g switches to %e at exponent 6 (eprec = 6).
    if (-4..6).contains(&exp) {
        format!("{f}")
    } else {
        go_exp(mantissa, exp)
    }
}

/// Split Rust's `1.5e-7` into `("1.5", -7)`.
fn split_exp(sci: &str) -> (&str, i32) {
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci, "0"));
    (mantissa, exp.parse().unwrap_or(0))
}

fn go_exp(mantissa: &str, exp: i32) -> String {
    let sign = if exp < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exp.abs())
}

/// `fmt.Sprint`: a space between operands when neither is a string.
pub(super) fn go_sprint(args: &[Cow<Value>]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 && !a.is_string() && !args[i - 1].is_string() {
            out.push(' ');
        }
        write_value(&mut out, a);
    }
    out
}

/// Docker's `json`: Go's encoder without HTML escaping or trailing newline.
pub(super) fn write_json(out: &mut String, v: &Value) {
    match v {
        Value::Number(n) if as_int(n).is_none() => {
            let f = n.as_f64().unwrap_or(0.0);
            let a = f.abs();
            if a != 0.0 && !(1e-6..1e21).contains(&a) {
                let sci = format!("{f:e}");
                let (mantissa, exp) = split_exp(&sci);
                let sign = if exp < 0 { "-" } else { "+" };
                // encoding/json prints e-7, not e-07, but keeps e+21.
                let digits = if exp < 0 {
                    format!("{}", -exp)
                } else {
                    format!("{exp:02}")
                };
                out.push_str(&format!("{mantissa}e{sign}{digits}"));
            } else {
                out.push_str(&format!("{f}"));
            }
        }
        Value::String(s) => json_str(out, s),
        Value::Array(a) => {
            out.push('[');
            for (i, e) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(out, e);
            }
            out.push(']');
        }
        Value::Object(m) => {
            out.push('{');
            for (i, (k, e)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_str(out, k);
                out.push(':');
                write_json(out, e);
            }
            out.push('}');
        }
        other => out.push_str(&other.to_string()),
    }
}

fn json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if u32::from(c) < 0x20 || c == '\u{2028}' || c == '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", u32::from(c)));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `strconv.Quote`.
fn go_quote(s: &str) -> String {
    let mut out = String::from('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if u32::from(c) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", u32::from(c)))
            }
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

// ---------------------------------------------------------------- printf

/// Flags, width and precision of one `%` directive.
#[derive(Debug, Default, Clone, Copy)]
struct Spec {
    minus: bool,
    plus: bool,
    zero: bool,
    space: bool,
    width: Option<usize>,
    prec: Option<usize>,
}

/// Go's `fmt.Sprintf` for `%v %s %d %q %t %x %X %o %b %c %e %f %g %%`.
pub(super) fn go_sprintf(format: &str, args: &[Cow<Value>]) -> String {
    let mut out = String::new();
    let mut next = 0;
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let spec = parse_spec(&mut chars);
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
        } else if let Some(arg) = args.get(next) {
            fmt_arg(&mut out, arg, verb, &spec);
            next += 1;
        } else {
            out.push_str(&format!("%!{verb}(MISSING)"));
        }
    }
    if let Some(extra) = args.get(next..).filter(|e| !e.is_empty()) {
        let parts: Vec<String> = extra.iter().map(|a| typed(a)).collect();
        out.push_str(&format!("%!(EXTRA {})", parts.join(", ")));
    }
    out
}

/// `type=value` as Go shows a mismatched argument; `<nil>` for nil.
fn typed(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        other => format!("{}={}", go_type(other), go_string(other)),
    }
}

fn parse_spec(chars: &mut Peekable<Chars>) -> Spec {
    let mut spec = Spec::default();
    while let Some(&c) = chars.peek() {
        match c {
            '-' => spec.minus = true,
            '+' => spec.plus = true,
            '0' => spec.zero = true,
            ' ' => spec.space = true,
            '#' => {}
            _ => break,
        }
        chars.next();
    }
    spec.width = read_int(chars);
    if chars.peek() == Some(&'.') {
        chars.next();
        spec.prec = Some(read_int(chars).unwrap_or(0));
    }
    spec
}

/// A decimal width or precision; Go rejects above 1e6, we clamp there.
fn read_int(chars: &mut Peekable<Chars>) -> Option<usize> {
    let mut n: Option<usize> = None;
    while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
        n = Some((n.unwrap_or(0) * 10 + d as usize).min(1_000_000));
        chars.next();
    }
    n
}

/// Format one argument; Go applies the verb to each element of a container.
fn fmt_arg(out: &mut String, v: &Value, verb: char, spec: &Spec) {
    match v {
        Value::Array(a) => {
            out.push('[');
            for (i, e) in a.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                fmt_arg(out, e, verb, spec);
            }
            out.push(']');
        }
        Value::Object(m) => {
            out.push_str("map[");
            for (i, (k, e)) in sorted(m).into_iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                fmt_arg(out, &Value::String(k.clone()), verb, spec);
                out.push(':');
                fmt_arg(out, e, verb, spec);
            }
            out.push(']');
        }
        _ => match fmt_scalar(v, verb, spec) {
            Some(s) => pad(out, &s, spec, v.is_number()),
            None if v.is_null() => out.push_str(&format!("%!{verb}(<nil>)")),
            None => out.push_str(&format!("%!{verb}({})", typed(v))),
        },
    }
}

fn fmt_scalar(v: &Value, verb: char, spec: &Spec) -> Option<String> {
    let signed = |s: String| match s.starts_with('-') {
        false if spec.plus => format!("+{s}"),
        false if spec.space => format!(" {s}"),
        _ => s,
    };
    match (verb, v) {
        ('v', Value::Number(_)) => Some(signed(go_string(v))),
        ('v', _) => Some(go_string(v)),
        ('s', Value::String(s)) => Some(match spec.prec {
            Some(p) => s.chars().take(p).collect(),
            None => s.clone(),
        }),
        ('q', Value::String(s)) => Some(go_quote(s)),
        ('t', Value::Bool(b)) => Some(b.to_string()),
        ('x' | 'X', Value::String(s)) => {
            let hex: String = s.bytes().map(|b| format!("{b:02x}")).collect();
            Some(if verb == 'X' { hex.to_uppercase() } else { hex })
        }
        ('d' | 'x' | 'X' | 'o' | 'b' | 'c' | 'q', Value::Number(n)) => {
            fmt_int(int_of(n)?, verb).map(signed)
        }
        ('e' | 'E' | 'f' | 'F' | 'g' | 'G', Value::Number(n)) => {
            Some(signed(fmt_float(n.as_f64()?, verb, spec.prec)))
        }
        _ => None,
    }
}

fn fmt_int(i: i128, verb: char) -> Option<String> {
    let sign = if i < 0 { "-" } else { "" };
    let a = i.unsigned_abs();
    Some(match verb {
        'd' => i.to_string(),
        'x' => format!("{sign}{a:x}"),
        'X' => format!("{sign}{a:X}"),
        'o' => format!("{sign}{a:o}"),
        'b' => format!("{sign}{a:b}"),
        'c' => u32::try_from(i).ok().and_then(char::from_u32)?.to_string(),
        _ => format!("'{}'", u32::try_from(i).ok().and_then(char::from_u32)?),
    })
}

fn fmt_float(f: f64, verb: char, prec: Option<usize>) -> String {
    let s = match verb {
        'f' | 'F' => format!("{:.*}", prec.unwrap_or(6), f),
        'e' | 'E' => {
            let sci = format!("{:.*e}", prec.unwrap_or(6), f);
            let (mantissa, exp) = split_exp(&sci);
            go_exp(mantissa, exp)
        }
        _ => match prec {
            None => go_float(f),
            Some(p) => fmt_g(f, p.max(1)),
        },
    };
    if verb.is_ascii_uppercase() {
        s.to_uppercase()
    } else {
        s
    }
}

/// `%.Ng`: N significant digits, trailing zeros dropped, `%e` when the
/// exponent is below -4 or at least the precision (strconv's rule).
fn fmt_g(f: f64, p: usize) -> String {
    let sci = format!("{:.*e}", p - 1, f);
    let (mantissa, exp) = split_exp(&sci);
    let mantissa = match mantissa.contains('.') {
        true => mantissa.trim_end_matches('0').trim_end_matches('.'),
        false => mantissa,
    };
    let nd = mantissa.bytes().filter(u8::is_ascii_digit).count() as i64;
    let dp = i64::from(exp) + 1;
    let eprec = if (p as i64) > nd && nd >= dp {
        nd
    } else {
        p as i64
    };
    if exp < -4 || i64::from(exp) >= eprec {
        return go_exp(mantissa, exp);
    }
    let decimals = usize::try_from(nd - dp).unwrap_or(0);
    format!("{f:.decimals$}")
}

fn pad(out: &mut String, s: &str, spec: &Spec, numeric: bool) {
    let fill = spec.width.unwrap_or(0).saturating_sub(s.chars().count());
    if fill == 0 {
        out.push_str(s);
    } else if spec.minus {
        out.push_str(s);
        out.push_str(&" ".repeat(fill));
    } else if spec.zero {
        let (sign, digits) = match s.chars().next() {
            Some(c @ ('-' | '+' | ' ')) if numeric => s.split_at(c.len_utf8()),
            _ => ("", s),
        };
        out.push_str(sign);
        out.push_str(&"0".repeat(fill));
        out.push_str(digits);
    } else {
        out.push_str(&" ".repeat(fill));
        out.push_str(s);
    }
}
