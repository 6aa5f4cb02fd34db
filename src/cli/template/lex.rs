//! Lexing: splits template text into literal text and the tokens of each
//! action, applying trim markers and dropping comments.

use std::str::Chars;

use serde_json::{Number, Value};

use super::{parse_err, TemplateError};

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
    Dot,
    Field(Vec<String>),
    /// Fields right after `)`: `(index . 0).Name`.
    Chain(Vec<String>),
    Var(String, Vec<String>),
    Ident(String),
    Lit(Value),
    Nil,
    LParen,
    RParen,
    Pipe,
    Declare,
    Assign,
    Comma,
}

#[derive(Debug, Clone)]
pub(super) struct Token {
    pub(super) tok: Tok,
    pub(super) pos: usize,
    pub(super) end: usize,
}

#[derive(Debug)]
pub(super) enum Item {
    Text(String),
    Action { pos: usize, toks: Vec<Token> },
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn is_ident_start(c: char) -> bool {
    c == '_' || c.is_alphabetic()
}

fn ident_end(src: &str, p: usize) -> usize {
    let rest = &src[p..];
    p + rest.len()
        - rest
            .trim_start_matches(|c: char| c == '_' || c.is_alphanumeric())
            .len()
}

fn skip_space(src: &str, p: usize) -> usize {
    p + src[p..].len() - src[p..].trim_start_matches(is_space).len()
}

fn push_text(items: &mut Vec<Item>, text: &str) {
    if !text.is_empty() {
        items.push(Item::Text(text.to_string()));
    }
}

/// Split the source into text and actions, applying `{{- ` and ` -}}`.
pub(super) fn lex(src: &str) -> Result<Vec<Item>, TemplateError> {
    let mut items = Vec::new();
    let mut i = 0;
    let mut trim_next = false;
    loop {
        let open = src[i..].find("{{").map(|o| i + o);
        let mut text = &src[i..open.unwrap_or(src.len())];
        if trim_next {
            text = text.trim_start_matches(is_space);
        }
        let Some(open) = open else {
            push_text(&mut items, text);
            return Ok(items);
        };
        let after = &src[open + 2..];
        let left_trim = after.starts_with('-') && after[1..].starts_with(is_space);
        if left_trim {
            text = text.trim_end_matches(is_space);
        }
        push_text(&mut items, text);
        let body = open + if left_trim { 3 } else { 2 };
        let (toks, next, right_trim) = lex_action(src, body)?;
        if let Some(toks) = toks {
            items.push(Item::Action { pos: open, toks });
        }
        i = next;
        trim_next = right_trim;
    }
}

/// Lex one action from `start` (just past `{{`); `None` for a comment.
/// Returns the tokens, the offset past `}}` and whether `-}}` closed it.
type Action = (Option<Vec<Token>>, usize, bool);

fn lex_action(src: &str, start: usize) -> Result<Action, TemplateError> {
    let first = skip_space(src, start);
    if src[first..].starts_with("/*") {
        let (next, trim) = lex_comment(src, first)?;
        return Ok((None, next, trim));
    }
    let mut toks: Vec<Token> = Vec::new();
    let mut p = start;
    loop {
        let q = skip_space(src, p);
        let spaced = q > p;
        let rest = &src[q..];
        if rest.is_empty() {
            return Err(parse_err(src, q, "unclosed action"));
        }
        if spaced && rest.starts_with("-}}") {
            return Ok((Some(toks), q + 3, true));
        }
        if rest.starts_with("}}") {
            return Ok((Some(toks), q + 2, false));
        }
        let after_paren = !spaced && matches!(toks.last(), Some(t) if t.tok == Tok::RParen);
        let (tok, end) = lex_token(src, q, after_paren)?;
        toks.push(Token { tok, pos: q, end });
        p = end;
    }
}

fn lex_comment(src: &str, p: usize) -> Result<(usize, bool), TemplateError> {
    let Some(close) = src[p + 2..].find("*/") else {
        return Err(parse_err(src, p, "unclosed comment"));
    };
    let q = p + 2 + close + 2;
    let r = skip_space(src, q);
    if r > q && src[r..].starts_with("-}}") {
        return Ok((r + 3, true));
    }
    if src[r..].starts_with("}}") {
        return Ok((r + 2, false));
    }
    Err(parse_err(src, q, "comment ends before closing delimiter"))
}

fn lex_token(src: &str, p: usize, after_paren: bool) -> Result<(Tok, usize), TemplateError> {
    let rest = &src[p..];
    let Some(c) = rest.chars().next() else {
        return Err(parse_err(src, p, "unclosed action"));
    };
    let next = rest[c.len_utf8()..].chars().next();
    let one = |tok| Ok((tok, p + 1));
    match c {
        '(' => one(Tok::LParen),
        ')' => one(Tok::RParen),
        '|' => one(Tok::Pipe),
        ',' => one(Tok::Comma),
        '=' => one(Tok::Assign),
        ':' if next == Some('=') => Ok((Tok::Declare, p + 2)),
        '"' => lex_quoted(src, p, '"'),
        '\'' => lex_quoted(src, p, '\''),
        '`' => match src[p + 1..].find('`') {
            Some(n) => Ok((Tok::Lit(Value::from(&src[p + 1..p + 1 + n])), p + n + 2)),
            None => Err(parse_err(src, p, "unterminated raw quoted string")),
        },
        '$' => {
            let name_end = ident_end(src, p + 1);
            let (fields, end) = lex_fields(src, name_end);
            Ok((Tok::Var(src[p..name_end].to_string(), fields), end))
        }
        '.' if next.is_some_and(is_ident_start) => {
            let (fields, end) = lex_fields(src, p);
            let tok = if after_paren {
                Tok::Chain(fields)
            } else {
                Tok::Field(fields)
            };
            Ok((tok, end))
        }
        '.' if next.is_some_and(|n| n.is_ascii_digit()) => lex_number(src, p),
        '.' => one(Tok::Dot),
        '0'..='9' => lex_number(src, p),
        '-' | '+' if next.is_some_and(|n| n.is_ascii_digit() || n == '.') => lex_number(src, p),
        c if is_ident_start(c) => Ok(lex_word(src, p)),
        c => Err(parse_err(
            src,
            p,
            format!("unrecognized character in action: U+{:04X} {c:?}", c as u32),
        )),
    }
}

/// A keyword, function name or `true`/`false`/`nil`.
fn lex_word(src: &str, p: usize) -> (Tok, usize) {
    let end = ident_end(src, p);
    let tok = match &src[p..end] {
        "true" => Tok::Lit(Value::Bool(true)),
        "false" => Tok::Lit(Value::Bool(false)),
        "nil" => Tok::Nil,
        word => Tok::Ident(word.to_string()),
    };
    (tok, end)
}

/// Read `.A.B.C` from `p`.
fn lex_fields(src: &str, mut p: usize) -> (Vec<String>, usize) {
    let mut fields = Vec::new();
    while src[p..].starts_with('.') && src[p + 1..].starts_with(is_ident_start) {
        let end = ident_end(src, p + 1);
        fields.push(src[p + 1..end].to_string());
        p = end;
    }
    (fields, p)
}

/// A `"..."` string or a `'x'` character constant (which is a number, as in Go).
fn lex_quoted(src: &str, p: usize, quote: char) -> Result<(Tok, usize), TemplateError> {
    let mut escaped = false;
    for (i, c) in src[p + 1..].char_indices() {
        if c == '\n' {
            break;
        } else if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == quote {
            let end = p + 1 + i + 1;
            let text = unquote(&src[p + 1..end - 1]).map_err(|m| parse_err(src, p, m))?;
            if quote == '"' {
                return Ok((Tok::Lit(Value::String(text)), end));
            }
            let mut chars = text.chars();
            return match (chars.next(), chars.next()) {
                (Some(c), None) => Ok((Tok::Lit(Value::from(u32::from(c))), end)),
                _ => Err(parse_err(src, p, "malformed character constant")),
            };
        }
    }
    Err(parse_err(src, p, "unterminated quoted string"))
}

/// Go's escapes: `\n \t \r \a \b \f \v \\ \" \' \xHH \uHHHH \UHHHHHHHH \ooo`.
fn unquote(s: &str) -> Result<String, String> {
    let bad = || format!("invalid syntax in string {s:?}");
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let code = |it: &mut Chars, n: usize, radix: u32, first: Option<char>| {
            let digits: String = first.into_iter().chain(it.take(n)).collect();
            u32::from_str_radix(&digits, radix)
                .ok()
                .and_then(char::from_u32)
        };
        let ch = match it.next().ok_or_else(bad)? {
            'n' => Some('\n'),
            't' => Some('\t'),
            'r' => Some('\r'),
            'a' => Some('\u{7}'),
            'b' => Some('\u{8}'),
            'f' => Some('\u{c}'),
            'v' => Some('\u{b}'),
            e @ ('\\' | '"' | '\'') => Some(e),
            'x' => code(&mut it, 2, 16, None),
            'u' => code(&mut it, 4, 16, None),
            'U' => code(&mut it, 8, 16, None),
            d @ '0'..='7' => code(&mut it, 2, 8, Some(d)),
            _ => None,
        };
        out.push(ch.ok_or_else(bad)?);
    }
    Ok(out)
}

fn lex_number(src: &str, p: usize) -> Result<(Tok, usize), TemplateError> {
    let b = src.as_bytes();
    let mut q = p;
    if matches!(b.get(q), Some(b'+' | b'-')) {
        q += 1;
    }
    let radix = b.get(q) == Some(&b'0') && matches!(b.get(q + 1), Some(b'x' | b'X'));
    while let Some(&c) = b.get(q) {
        let exp_sign =
            matches!(c, b'+' | b'-') && !radix && q > p && matches!(b[q - 1], b'e' | b'E');
        if c.is_ascii_alphanumeric() || c == b'_' || c == b'.' || exp_sign {
            q += 1;
        } else {
            break;
        }
    }
    let text = &src[p..q];
    match parse_number(text) {
        Some(v) => Ok((Tok::Lit(v), q)),
        None => Err(parse_err(src, p, format!("bad number syntax: {text:?}"))),
    }
}

fn parse_number(text: &str) -> Option<Value> {
    let clean: String = text.chars().filter(|&c| c != '_').collect();
    let (neg, digits) = match clean.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, clean.strip_prefix('+').unwrap_or(&clean)),
    };
    let radix = [
        ("0x", 16),
        ("0X", 16),
        ("0o", 8),
        ("0O", 8),
        ("0b", 2),
        ("0B", 2),
    ]
    .iter()
    .find_map(|(prefix, radix)| digits.strip_prefix(prefix).map(|d| (d, *radix)));
    let legacy_octal = digits.len() > 1 && digits.starts_with('0');
    let radix = radix.or_else(|| {
        (legacy_octal && digits.bytes().all(|c| c.is_ascii_digit())).then_some((digits, 8))
    });
    if let Some((d, radix)) = radix {
        let n = i64::from_str_radix(d, radix).ok()?;
        return Some(Value::from(if neg { -n } else { n }));
    }
    if let Ok(n) = clean.parse::<i64>() {
        return Some(Value::from(n));
    }
    if let Ok(n) = clean.parse::<u64>() {
        return Some(Value::from(n));
    }
    let floaty = digits
        .bytes()
        .all(|c| c.is_ascii_digit() || b".eE+-".contains(&c));
    let f = clean.parse::<f64>().ok().filter(|_| floaty)?;
    Number::from_f64(f).map(Value::Number)
}
