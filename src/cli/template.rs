//! Go `text/template` for the `--format` flags (`amber inspect`, `amber
//! images`, `amber ps`, ...), evaluated over the JSON the API returns, the way
//! Docker's CLI does it (<https://docs.docker.com/engine/cli/formatting/>).
//!
//! Covers what people type in one-liners: fields, variables, pipelines,
//! parentheses, `if`/`with`/`range` with `else` (and `else if`/`else with`),
//! `break`/`continue`, comments, trim markers; Go's builtins `and or not len
//! index slice print printf println eq ne lt le gt ge` and Docker's `json join
//! split upper lower title pad truncate`. Not covered: `define`, `template`,
//! `block`, `call`, `html`, `js`, `urlquery`, methods, custom delimiters.
//! Values print as Go's `fmt` prints them (`[a b]`, `map[k:v]`, `1.7e+09`); a
//! missing map key prints `<no value>`, an explicit JSON null `<nil>`.
//! Spec: <https://pkg.go.dev/text/template>.
//!
//! Pure: no I/O and no other amber module.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::iter::Peekable;
use std::str::Chars;

use serde_json::{Map, Number, Value};

/// A failure to parse or execute a template; the message reads like Go's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// The template text is malformed, e.g. `template: :1: unclosed action`.
    #[error("template: :{line}: {message}")]
    Parse {
        /// 1-based line where the problem was found.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The data did not fit the template, e.g. a field of a string.
    #[error("template: :{line}:{col}: executing \"\" at <{context}>: {message}")]
    Exec {
        /// 1-based line of the failing command.
        line: usize,
        /// 0-based byte offset of the failing command in its line, as in Go.
        col: usize,
        /// The failing command's source text.
        context: String,
        /// What went wrong.
        message: String,
    },
}

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    nodes: Vec<Node>,
}

impl Template {
    /// Parse Go template text, checking functions and variables exist.
    pub fn parse(src: &str) -> Result<Template, TemplateError> {
        let items = lex(src)?;
        let mut parser = Parser {
            src,
            items: items.into_iter(),
            vars: vec!["$".to_string()],
            range_depth: 0,
            depth: 0,
        };
        let (nodes, stop) = parser.parse_list()?;
        match stop {
            Stop::Eof => Ok(Template { nodes }),
            Stop::End(pos) => Err(parse_err(src, pos, "unexpected {{end}}")),
            Stop::Else(pos, _) => Err(parse_err(src, pos, "unexpected {{else}}")),
        }
    }

    /// Execute the template with `data` as both `.` and `$`.
    pub fn render(&self, data: &Value) -> Result<String, TemplateError> {
        let root = Some(Cow::Borrowed(data));
        let mut state = State {
            vars: vec![("$".to_string(), root.clone())],
            out: String::new(),
        };
        state.walk(&self.nodes, &root)?;
        Ok(state.out)
    }
}

const FUNCS: &[&str] = &[
    "and", "or", "not", "len", "index", "slice", "print", "printf", "println", "eq", "ne", "lt",
    "le", "gt", "ge", "json", "join", "split", "upper", "lower", "title", "pad", "truncate",
];
/// Deepest nesting of parentheses and blocks; parsing and execution recurse
/// per level, so this bounds stack use (Go has the same guard).
const MAX_DEPTH: usize = 100;

const KEYWORDS: &[&str] = &[
    "if", "else", "end", "range", "with", "define", "template", "block", "break", "continue",
];

fn line_col(src: &str, pos: usize) -> (usize, usize) {
    let before = src.get(..pos).unwrap_or(src);
    let line = 1 + before.matches('\n').count();
    let col = before
        .rfind('\n')
        .map_or(before.len(), |i| before.len() - i - 1);
    (line, col)
}

fn parse_err(src: &str, pos: usize, message: impl Into<String>) -> TemplateError {
    TemplateError::Parse {
        line: line_col(src, pos).0,
        message: message.into(),
    }
}

// ---------------------------------------------------------------- lexing

#[derive(Debug, Clone, PartialEq)]
enum Tok {
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
struct Token {
    tok: Tok,
    pos: usize,
    end: usize,
}

#[derive(Debug)]
enum Item {
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
fn lex(src: &str) -> Result<Vec<Item>, TemplateError> {
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

// ---------------------------------------------------------------- parsing

#[derive(Debug, Clone)]
enum Node {
    Text(String),
    Print(Pipe),
    Cond { with: bool, branch: Branch },
    Range(Branch),
    Break,
    Continue,
}

#[derive(Debug, Clone)]
struct Branch {
    pipe: Pipe,
    body: Vec<Node>,
    alt: Vec<Node>,
}

#[derive(Debug, Clone)]
struct Pipe {
    decl: Vec<String>,
    assign: bool,
    cmds: Vec<Cmd>,
    ctx: Ctx,
}

#[derive(Debug, Clone)]
struct Cmd {
    args: Vec<Operand>,
    ctx: Ctx,
}

#[derive(Debug, Clone)]
struct Operand {
    term: Term,
    ctx: Ctx,
}

#[derive(Debug, Clone)]
enum Term {
    Dot,
    Field(Vec<String>),
    Var(String, Vec<String>),
    Func(String),
    Lit(Value),
    Nil,
    Sub(Box<Pipe>, Vec<String>),
}

/// Where a node came from, for Go-style execution errors.
#[derive(Debug, Clone)]
struct Ctx {
    line: usize,
    col: usize,
    text: String,
}

impl Ctx {
    fn err(&self, message: impl Into<String>) -> TemplateError {
        TemplateError::Exec {
            line: self.line,
            col: self.col,
            context: self.text.clone(),
            message: message.into(),
        }
    }
}

/// What ended a list of nodes.
enum Stop {
    Eof,
    End(usize),
    Else(usize, Option<(String, Vec<Token>)>),
}

enum Parsed {
    Node(Node),
    Stop(Stop),
}

struct Cursor<'t> {
    toks: &'t [Token],
    i: usize,
}

impl<'t> Cursor<'t> {
    fn peek(&self) -> Option<&'t Token> {
        self.toks.get(self.i)
    }

    fn bump(&mut self) -> Option<&'t Token> {
        let t = self.toks.get(self.i);
        self.i += 1;
        t
    }
}

struct Parser<'s> {
    src: &'s str,
    items: std::vec::IntoIter<Item>,
    /// Variables in scope, for Go's `undefined variable` check.
    vars: Vec<String>,
    range_depth: usize,
    /// Nesting of parentheses and control blocks, bounded by [`MAX_DEPTH`].
    depth: usize,
}

impl Parser<'_> {
    fn ctx(&self, start: usize, end: usize) -> Ctx {
        let (line, col) = line_col(self.src, start);
        let text = self.src.get(start..end).unwrap_or_default().to_string();
        Ctx { line, col, text }
    }

    fn enter(&mut self, pos: usize) -> Result<(), TemplateError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(parse_err(self.src, pos, "max expression depth exceeded"));
        }
        Ok(())
    }

    fn unexpected(&self, t: &Token, context: &str) -> TemplateError {
        let text = self.src.get(t.pos..t.end).unwrap_or_default();
        parse_err(self.src, t.pos, format!("unexpected {text:?} in {context}"))
    }

    fn parse_list(&mut self) -> Result<(Vec<Node>, Stop), TemplateError> {
        let mut nodes = Vec::new();
        while let Some(item) = self.items.next() {
            match item {
                Item::Text(t) => nodes.push(Node::Text(t)),
                Item::Action { pos, toks } => match self.parse_action(pos, &toks)? {
                    Parsed::Node(n) => nodes.push(n),
                    Parsed::Stop(stop) => return Ok((nodes, stop)),
                },
            }
        }
        Ok((nodes, Stop::Eof))
    }

    fn parse_action(&mut self, pos: usize, toks: &[Token]) -> Result<Parsed, TemplateError> {
        let keyword = match toks.first() {
            Some(Token {
                tok: Tok::Ident(w), ..
            }) => w.as_str(),
            _ => "",
        };
        let rest = toks.get(1..).unwrap_or_default();
        let no_more = |kw: &str| match rest.first() {
            Some(t) => Err(self.unexpected(t, kw)),
            None => Ok(()),
        };
        match keyword {
            "end" => no_more("end").map(|()| Parsed::Stop(Stop::End(pos))),
            "else" => match rest.first() {
                None => Ok(Parsed::Stop(Stop::Else(pos, None))),
                Some(Token {
                    tok: Tok::Ident(w), ..
                }) if w == "if" || w == "with" => {
                    let nested = Some((w.clone(), rest[1..].to_vec()));
                    Ok(Parsed::Stop(Stop::Else(pos, nested)))
                }
                Some(t) => Err(self.unexpected(t, "else")),
            },
            "if" | "with" | "range" => Ok(Parsed::Node(self.parse_control(keyword, pos, rest)?)),
            "break" | "continue" => {
                no_more(keyword)?;
                if self.range_depth == 0 {
                    let msg = format!("{{{{{keyword}}}}} outside {{{{range}}}}");
                    return Err(parse_err(self.src, pos, msg));
                }
                let node = if keyword == "break" {
                    Node::Break
                } else {
                    Node::Continue
                };
                Ok(Parsed::Node(node))
            }
            "define" | "template" | "block" => {
                let msg = format!("{{{{{keyword}}}}} is not supported");
                Err(parse_err(self.src, pos, msg))
            }
            _ => Ok(Parsed::Node(Node::Print(
                self.parse_pipe(pos, toks, "command")?,
            ))),
        }
    }

    /// `if`, `with` or `range`, through its `else` branches to `end`.
    fn parse_control(
        &mut self,
        kind: &str,
        pos: usize,
        toks: &[Token],
    ) -> Result<Node, TemplateError> {
        self.enter(pos)?;
        let mark = self.vars.len();
        let pipe = self.parse_pipe(pos, toks, kind)?;
        let is_range = kind == "range";
        self.range_depth += usize::from(is_range);
        let (body, stop) = self.parse_list()?;
        self.range_depth -= usize::from(is_range);
        let alt = match stop {
            Stop::End(_) => Vec::new(),
            Stop::Eof => return Err(parse_err(self.src, self.src.len(), "unexpected EOF")),
            // `{{else if x}}` is `{{else}}{{if x}}...{{end}}{{end}}` sharing one end.
            Stop::Else(at, Some((nested, toks))) => {
                if nested != kind || is_range {
                    let msg = format!("unexpected {{{{else {nested}}}}} in {kind}");
                    return Err(parse_err(self.src, at, msg));
                }
                vec![self.parse_control(&nested, at, &toks)?]
            }
            Stop::Else(_, None) => match self.parse_list()? {
                (alt, Stop::End(_)) => alt,
                (_, Stop::Else(at, _)) => {
                    return Err(parse_err(self.src, at, "expected end; found {{else}}"))
                }
                (_, Stop::Eof) => {
                    return Err(parse_err(self.src, self.src.len(), "unexpected EOF"))
                }
            },
        };
        self.vars.truncate(mark);
        self.depth -= 1;
        let branch = Branch { pipe, body, alt };
        Ok(match kind {
            "range" => Node::Range(branch),
            _ => Node::Cond {
                with: kind == "with",
                branch,
            },
        })
    }

    fn parse_pipe(
        &mut self,
        pos: usize,
        toks: &[Token],
        context: &str,
    ) -> Result<Pipe, TemplateError> {
        let (decl, assign, start) = self.parse_decl(toks, context)?;
        let mut cur = Cursor { toks, i: start };
        let cmds = self.parse_cmds(&mut cur, pos)?;
        if let Some(t) = cur.peek() {
            return Err(self.unexpected(t, context));
        }
        if !assign {
            self.vars.extend(decl.iter().cloned());
        }
        let start = toks.get(start).map_or(pos, |t| t.pos);
        let ctx = self.ctx(start, toks.last().map_or(pos, |t| t.end));
        Ok(Pipe {
            decl,
            assign,
            cmds,
            ctx,
        })
    }

    /// `$x :=`, `$x =` or (for range) `$k, $v :=`: names, is-assignment, tokens used.
    fn parse_decl(
        &self,
        toks: &[Token],
        context: &str,
    ) -> Result<(Vec<String>, bool, usize), TemplateError> {
        let var = |i: usize| match toks.get(i).map(|t| &t.tok) {
            Some(Tok::Var(name, fields)) if fields.is_empty() => Some(name.clone()),
            _ => None,
        };
        let tok = |i: usize| toks.get(i).map(|t| &t.tok);
        if let (Some(a), Some(op @ (Tok::Declare | Tok::Assign))) = (var(0), tok(1)) {
            let assign = *op == Tok::Assign;
            if assign && !self.vars.contains(&a) {
                return Err(parse_err(
                    self.src,
                    toks[0].pos,
                    format!("undefined variable {a:?}"),
                ));
            }
            return Ok((vec![a], assign, 2));
        }
        if let (Some(a), Some(Tok::Comma), Some(b), Some(Tok::Declare)) =
            (var(0), tok(1), var(2), tok(3))
        {
            if context != "range" {
                return Err(parse_err(
                    self.src,
                    toks[1].pos,
                    "too many declarations in command",
                ));
            }
            return Ok((vec![a, b], false, 4));
        }
        Ok((Vec::new(), false, 0))
    }

    fn parse_cmds(&mut self, cur: &mut Cursor, pos: usize) -> Result<Vec<Cmd>, TemplateError> {
        let mut cmds: Vec<Cmd> = Vec::new();
        loop {
            let cmd = self.parse_cmd(cur, pos)?;
            let literal = matches!(cmd.args[0].term, Term::Lit(_) | Term::Nil | Term::Dot);
            if !cmds.is_empty() && literal {
                let msg = format!(
                    "non executable command in pipeline stage {}",
                    cmds.len() + 1
                );
                return Err(TemplateError::Parse {
                    line: cmd.ctx.line,
                    message: msg,
                });
            }
            cmds.push(cmd);
            match cur.peek() {
                Some(Token { tok: Tok::Pipe, .. }) => cur.i += 1,
                _ => return Ok(cmds),
            }
        }
    }

    fn parse_cmd(&mut self, cur: &mut Cursor, pos: usize) -> Result<Cmd, TemplateError> {
        let start = cur.peek().map_or(pos, |t| t.pos);
        let mut args = Vec::new();
        let mut end = start;
        while let Some(t) = cur.peek() {
            if matches!(t.tok, Tok::Pipe | Tok::RParen) {
                break;
            }
            let (op, op_end) = self.parse_operand(cur)?;
            args.push(op);
            end = op_end;
        }
        if args.is_empty() {
            return Err(parse_err(self.src, start, "missing value for command"));
        }
        Ok(Cmd {
            args,
            ctx: self.ctx(start, end),
        })
    }

    fn parse_operand(&mut self, cur: &mut Cursor) -> Result<(Operand, usize), TemplateError> {
        let Some(t) = cur.bump() else {
            return Err(parse_err(
                self.src,
                self.src.len(),
                "missing value for command",
            ));
        };
        let term = match &t.tok {
            Tok::Dot => Term::Dot,
            Tok::Field(f) => Term::Field(f.clone()),
            Tok::Var(name, f) if self.vars.contains(name) => Term::Var(name.clone(), f.clone()),
            Tok::Var(name, _) => {
                return Err(parse_err(
                    self.src,
                    t.pos,
                    format!("undefined variable {name:?}"),
                ))
            }
            Tok::Lit(v) => Term::Lit(v.clone()),
            Tok::Nil => Term::Nil,
            Tok::Ident(name) if KEYWORDS.contains(&name.as_str()) => {
                return Err(self.unexpected(t, "command"))
            }
            Tok::Ident(name) if FUNCS.contains(&name.as_str()) => Term::Func(name.clone()),
            Tok::Ident(name) => {
                return Err(parse_err(
                    self.src,
                    t.pos,
                    format!("function {name:?} not defined"),
                ))
            }
            Tok::LParen => return self.parse_paren(cur, t.pos),
            _ => return Err(self.unexpected(t, "command")),
        };
        Ok((
            Operand {
                term,
                ctx: self.ctx(t.pos, t.end),
            },
            t.end,
        ))
    }

    fn parse_paren(
        &mut self,
        cur: &mut Cursor,
        open: usize,
    ) -> Result<(Operand, usize), TemplateError> {
        self.enter(open)?;
        let cmds = self.parse_cmds(cur, open)?;
        self.depth -= 1;
        let mut end = match cur.bump() {
            Some(Token {
                tok: Tok::RParen,
                end,
                ..
            }) => *end,
            _ => return Err(parse_err(self.src, open, "unclosed left paren")),
        };
        let mut fields = Vec::new();
        if let Some(Token {
            tok: Tok::Chain(f),
            end: e,
            ..
        }) = cur.peek()
        {
            fields = f.clone();
            end = *e;
            cur.i += 1;
        }
        let ctx = self.ctx(open, end);
        let pipe = Pipe {
            decl: Vec::new(),
            assign: false,
            cmds,
            ctx: ctx.clone(),
        };
        Ok((
            Operand {
                term: Term::Sub(Box::new(pipe), fields),
                ctx,
            },
            end,
        ))
    }
}

// ---------------------------------------------------------------- execution

/// A value during execution; `None` is Go's "no value" (a missing map key).
type Val<'d> = Option<Cow<'d, Value>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Normal,
    Break,
    Continue,
}

struct State<'d> {
    vars: Vec<(String, Val<'d>)>,
    out: String,
}

impl<'d> State<'d> {
    fn walk(&mut self, nodes: &[Node], dot: &Val<'d>) -> Result<Flow, TemplateError> {
        for node in nodes {
            let flow = match node {
                Node::Text(t) => {
                    self.out.push_str(t);
                    Flow::Normal
                }
                Node::Print(pipe) => {
                    let v = self.eval_pipe(pipe, dot)?;
                    if pipe.decl.is_empty() {
                        match &v {
                            Some(v) => write_value(&mut self.out, v),
                            None => self.out.push_str("<no value>"),
                        }
                    } else {
                        self.bind(pipe, v);
                    }
                    Flow::Normal
                }
                Node::Cond { with, branch } => self.walk_cond(*with, branch, dot)?,
                Node::Range(branch) => self.walk_range(branch, dot)?,
                Node::Break => Flow::Break,
                Node::Continue => Flow::Continue,
            };
            if flow != Flow::Normal {
                return Ok(flow);
            }
        }
        Ok(Flow::Normal)
    }

    fn bind(&mut self, pipe: &Pipe, v: Val<'d>) {
        let Some(name) = pipe.decl.first() else {
            return;
        };
        if !pipe.assign {
            self.vars.push((name.clone(), v));
        } else if let Some(slot) = self.vars.iter_mut().rev().find(|(n, _)| n == name) {
            slot.1 = v;
        }
    }

    fn walk_cond(&mut self, with: bool, b: &Branch, dot: &Val<'d>) -> Result<Flow, TemplateError> {
        let mark = self.vars.len();
        let v = self.eval_pipe(&b.pipe, dot)?;
        if !b.pipe.decl.is_empty() {
            self.bind(&b.pipe, v.clone());
        }
        let flow = match (truth(&v), with) {
            (true, true) => self.walk(&b.body, &v),
            (true, false) => self.walk(&b.body, dot),
            (false, _) => self.walk(&b.alt, dot),
        };
        self.vars.truncate(mark);
        flow
    }

    fn walk_range(&mut self, b: &Branch, dot: &Val<'d>) -> Result<Flow, TemplateError> {
        let v = self.eval_pipe(&b.pipe, dot)?;
        let items = range_items(v).map_err(|m| b.pipe.ctx.err(m))?;
        if items.is_empty() {
            return self.walk(&b.alt, dot);
        }
        for (key, elem) in items {
            let mark = self.vars.len();
            let elem = Some(elem);
            match b.pipe.decl.as_slice() {
                [v] => self.vars.push((v.clone(), elem.clone())),
                [k, v] => {
                    self.vars.push((k.clone(), Some(Cow::Owned(key))));
                    self.vars.push((v.clone(), elem.clone()));
                }
                _ => {}
            }
            let flow = self.walk(&b.body, &elem);
            self.vars.truncate(mark);
            if flow? == Flow::Break {
                break;
            }
        }
        Ok(Flow::Normal)
    }

    fn eval_pipe(&mut self, pipe: &Pipe, dot: &Val<'d>) -> Result<Val<'d>, TemplateError> {
        let mut last: Option<Val<'d>> = None;
        for cmd in &pipe.cmds {
            last = Some(self.eval_cmd(cmd, dot, last)?);
        }
        Ok(last.flatten())
    }

    /// One pipeline stage; `fin` is the previous stage's value, passed last.
    fn eval_cmd(
        &mut self,
        cmd: &Cmd,
        dot: &Val<'d>,
        fin: Option<Val<'d>>,
    ) -> Result<Val<'d>, TemplateError> {
        let Some((first, rest)) = cmd.args.split_first() else {
            return Ok(None);
        };
        match &first.term {
            Term::Func(name) => self.call(name, &cmd.ctx, rest, dot, fin),
            Term::Nil => Err(first.ctx.err("nil is not a command")),
            term if !rest.is_empty() || fin.is_some() => {
                let msg = match term {
                    Term::Field(f) | Term::Var(_, f) | Term::Sub(_, f) if !f.is_empty() => {
                        format!("{} is not a method but has arguments", f[f.len() - 1])
                    }
                    _ => format!("can't give argument to non-function {}", first.ctx.text),
                };
                Err(first.ctx.err(msg))
            }
            _ => self.eval_operand(first, dot),
        }
    }

    fn eval_operand(&mut self, op: &Operand, dot: &Val<'d>) -> Result<Val<'d>, TemplateError> {
        match &op.term {
            Term::Dot => Ok(dot.clone()),
            Term::Field(f) => walk_fields(dot, f, &op.ctx),
            Term::Var(name, f) => match self.vars.iter().rev().find(|(n, _)| n == name) {
                Some((_, v)) => walk_fields(v, f, &op.ctx),
                None => Ok(None),
            },
            Term::Lit(v) => Ok(Some(Cow::Owned(v.clone()))),
            Term::Nil => Ok(Some(Cow::Owned(Value::Null))),
            Term::Func(name) => self.call(name, &op.ctx, &[], dot, None),
            Term::Sub(pipe, f) => {
                let v = self.eval_pipe(pipe, dot)?;
                walk_fields(&v, f, &op.ctx)
            }
        }
    }

    fn call(
        &mut self,
        name: &str,
        ctx: &Ctx,
        args: &[Operand],
        dot: &Val<'d>,
        fin: Option<Val<'d>>,
    ) -> Result<Val<'d>, TemplateError> {
        if name == "and" || name == "or" {
            return self.call_logic(name, ctx, args, dot, fin);
        }
        let mut vals = Vec::with_capacity(args.len() + 1);
        for a in args {
            vals.push(self.eval_operand(a, dot)?);
        }
        vals.extend(fin);
        builtin(name, vals).map_err(|e| match e {
            CallError::Usage(m) => ctx.err(m),
            CallError::Failed(m) => ctx.err(format!("error calling {name}: {m}")),
        })
    }

    /// `and`/`or`, which stop evaluating at the first falsy/truthy argument.
    fn call_logic(
        &mut self,
        name: &str,
        ctx: &Ctx,
        args: &[Operand],
        dot: &Val<'d>,
        fin: Option<Val<'d>>,
    ) -> Result<Val<'d>, TemplateError> {
        if args.is_empty() && fin.is_none() {
            return Err(ctx.err(format!(
                "wrong number of args for {name}: want at least 1 got 0"
            )));
        }
        let mut last = None;
        for a in args {
            let v = self.eval_operand(a, dot)?;
            if truth(&v) != (name == "and") {
                return Ok(v);
            }
            last = Some(v);
        }
        Ok(fin.or(last).flatten())
    }
}

fn walk_fields<'d>(v: &Val<'d>, names: &[String], ctx: &Ctx) -> Result<Val<'d>, TemplateError> {
    let Some((name, rest)) = names.split_first() else {
        return Ok(v.clone());
    };
    let next = match v {
        None => return Ok(None),
        Some(Cow::Borrowed(b)) => field(b, name, ctx)?.map(Cow::Borrowed),
        Some(Cow::Owned(o)) => field(o, name, ctx)?.cloned().map(Cow::Owned),
    };
    walk_fields(&next, rest, ctx)
}

fn field<'v>(v: &'v Value, name: &str, ctx: &Ctx) -> Result<Option<&'v Value>, TemplateError> {
    match v {
        Value::Object(m) => Ok(m.get(name)),
        Value::Null => Err(ctx.err(format!("nil pointer evaluating interface {{}}.{name}"))),
        other => Err(ctx.err(format!(
            "can't evaluate field {name} in type {}",
            go_type(other)
        ))),
    }
}

/// Key and element of each iteration: arrays in order, maps by sorted key.
fn range_items(v: Val<'_>) -> Result<Vec<(Value, Cow<'_, Value>)>, String> {
    Ok(match v {
        None | Some(Cow::Borrowed(Value::Null)) | Some(Cow::Owned(Value::Null)) => Vec::new(),
        Some(Cow::Borrowed(Value::Array(a))) => a
            .iter()
            .enumerate()
            .map(|(i, e)| (Value::from(i), Cow::Borrowed(e)))
            .collect(),
        Some(Cow::Owned(Value::Array(a))) => a
            .into_iter()
            .enumerate()
            .map(|(i, e)| (Value::from(i), Cow::Owned(e)))
            .collect(),
        Some(Cow::Borrowed(Value::Object(m))) => by_key(
            m.iter()
                .map(|(k, e)| (k.clone(), Cow::Borrowed(e)))
                .collect(),
        ),
        Some(Cow::Owned(Value::Object(m))) => {
            by_key(m.into_iter().map(|(k, e)| (k, Cow::Owned(e))).collect())
        }
        // Go 1.22 ranges over an integer n as 0..n.
        Some(other) => match other.as_u64() {
            Some(n) => (0..n)
                .map(|i| (Value::from(i), Cow::Owned(Value::from(i))))
                .collect(),
            None => return Err(format!("range can't iterate over {}", go_string(&other))),
        },
    })
}

fn by_key(mut kv: Vec<(String, Cow<'_, Value>)>) -> Vec<(Value, Cow<'_, Value>)> {
    kv.sort_by(|a, b| a.0.cmp(&b.0));
    kv.into_iter().map(|(k, v)| (Value::String(k), v)).collect()
}

fn truth(v: &Val) -> bool {
    v.as_deref().is_some_and(truth_value)
}

fn truth_value(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => match as_int(n) {
            Some(i) => i != 0,
            None => n.as_f64().is_some_and(|f| f != 0.0),
        },
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(m) => !m.is_empty(),
    }
}

// ---------------------------------------------------------------- functions

/// Why a builtin failed: `Usage` reads as Go's argument checks, `Failed`
/// gets Go's `error calling NAME:` prefix.
enum CallError {
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

fn builtin<'d>(name: &str, args: Vec<Val<'d>>) -> CallResult<Val<'d>> {
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

fn as_int(n: &Number) -> Option<i128> {
    n.as_i64()
        .map(i128::from)
        .or_else(|| n.as_u64().map(i128::from))
}

/// An integer, also from a float without fraction (JSON does not distinguish).
fn int_of(n: &Number) -> Option<i128> {
    as_int(n).or_else(|| {
        let f = n.as_f64()?;
        // Truncation is exact here: no fraction and well inside i128.
        (f.fract() == 0.0 && f.abs() < 1e30).then_some(f as i128)
    })
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

// ---------------------------------------------------------------- printing

/// The Go type a decoded JSON value would have, for error messages.
fn go_type(v: &Value) -> &'static str {
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

fn go_string(v: &Value) -> String {
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
fn write_value(out: &mut String, v: &Value) {
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
fn go_float(f: f64) -> String {
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
fn go_sprint(args: &[Cow<Value>]) -> String {
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
fn write_json(out: &mut String, v: &Value) {
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
fn go_sprintf(format: &str, args: &[Cow<Value>]) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A trimmed `docker inspect` of a running container.
    fn container() -> Value {
        json!({
            "Id": "3f2a9c1e5b7d0a4c",
            "Created": "2024-01-02T03:04:05.123456789Z",
            "Name": "/web",
            "RestartCount": 0,
            "State": {
                "Status": "running", "Running": true, "Paused": false,
                "Pid": 4242, "ExitCode": 0, "Error": ""
            },
            "Config": {
                "Hostname": "3f2a9c1e5b7d",
                "Env": ["A=1", "B=2"],
                "Cmd": ["nginx", "-g", "daemon off;"],
                "Labels": {"com.example": "yes", "maintainer": "ops"},
                "Volumes": null,
                "ExposedPorts": {"80/tcp": {}}
            },
            "NetworkSettings": {
                "Networks": {
                    "bridge": {"IPAddress": "172.17.0.2", "Gateway": "172.17.0.1"},
                    "backend": {"IPAddress": "10.0.0.5", "Gateway": "10.0.0.1"}
                },
                "Ports": {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]}
            },
            "RootFS": {"Layers": ["sha256:aaa", "sha256:bbb"], "Type": "layers"},
            "Mounts": [],
            "Size": 1.7e9,
            "VirtualSize": 123456,
            "Ratio": 0.25,
            "Tiny": 0.00001,
            "Weird": "a\"b\n"
        })
    }

    fn render(src: &str) -> Result<String, TemplateError> {
        Template::parse(src)?.render(&container())
    }

    fn check(cases: &[(&str, &str)]) {
        for (src, want) in cases {
            match render(src) {
                Ok(got) => assert_eq!(&got, want, "template {src:?}"),
                Err(e) => panic!("template {src:?} failed: {e}"),
            }
        }
    }

    fn check_err(cases: &[(&str, &str)]) {
        for (src, want) in cases {
            match render(src) {
                Ok(got) => panic!("template {src:?} rendered {got:?}, want error {want:?}"),
                Err(e) => assert_eq!(e.to_string(), *want, "template {src:?}"),
            }
        }
    }

    #[test]
    fn fields_and_values() {
        check(&[
            ("{{.Id}}", "3f2a9c1e5b7d0a4c"),
            ("id={{.Id}}\n", "id=3f2a9c1e5b7d0a4c\n"),
            ("{{.Config.Env}}", "[A=1 B=2]"),
            ("{{.State.Status}} {{.State.Pid}}", "running 4242"),
            (
                "{{.NetworkSettings.Networks.bridge.IPAddress}}",
                "172.17.0.2",
            ),
            ("{{.State.Running}} {{.State.Paused}}", "true false"),
            ("{{.Config.Labels}}", "map[com.example:yes maintainer:ops]"),
            (
                "{{.NetworkSettings.Ports}}",
                "map[80/tcp:[map[HostIp:0.0.0.0 HostPort:8080]]]",
            ),
            ("{{.Config.ExposedPorts}}", "map[80/tcp:map[]]"),
            ("{{.Mounts}}", "[]"),
            ("{{.Missing}}", "<no value>"),
            ("{{.Config.Nope.Deeper}}", "<no value>"),
            ("{{.Config.Volumes}}", "<nil>"),
            (
                "{{.Size}} {{.VirtualSize}} {{.Ratio}} {{.Tiny}}",
                "1.7e+09 123456 0.25 1e-05",
            ),
            ("{{.RestartCount}}", "0"),
            (
                "{{.State}}",
                "map[Error: ExitCode:0 Paused:false Pid:4242 Running:true Status:running]",
            ),
            ("{{.RootFS.Layers}}", "[sha256:aaa sha256:bbb]"),
            ("{{.Weird}}", "a\"b\n"),
            ("plain text", "plain text"),
            ("", ""),
            ("a }} b", "a }} b"),
        ]);
    }

    #[test]
    fn literals() {
        check(&[
            (r#"{{"a\tb\n\"q\"\\"}}"#, "a\tb\n\"q\"\\"),
            (r#"{{"\x41\u00e9\101"}}"#, "AéA"),
            ("{{`raw\\n`}}", "raw\\n"),
            (
                "{{1.5}} {{-3}} {{0x1F}} {{1e3}} {{1.0}}",
                "1.5 -3 31 1000 1",
            ),
            ("{{'a'}}", "97"),
            ("{{true}} {{false}}", "true false"),
            (r#"{{"}}"}}"#, "}}"),
        ]);
    }

    #[test]
    fn trim_markers_and_comments() {
        check(&[
            ("a  {{- .Name -}}  b", "a/webb"),
            ("a \n\t{{- .Name}} b", "a/web b"),
            ("{{.Name -}}\n  x", "/webx"),
            ("{{/* a comment */}}x", "x"),
            ("x {{- /* comment */ -}} y", "xy"),
            ("{{/* multi\nline */}}z", "z"),
            ("{{-3}}", "-3"),
        ]);
    }

    #[test]
    fn variables() {
        check(&[
            ("{{$x := .State.Pid}}{{$x}}", "4242"),
            ("{{$}}", &go_string(&container())),
            ("{{range .Config.Env}}{{$.Name}};{{end}}", "/web;/web;"),
            (
                "{{$n := 0}}{{range .Config.Env}}{{$n = .}}{{end}}{{$n}}",
                "B=2",
            ),
            ("{{with $s := .State}}{{$s.Status}}{{end}}", "running"),
            (
                "{{$net := .NetworkSettings}}{{$net.Networks.backend.Gateway}}",
                "10.0.0.1",
            ),
            (
                "{{range $k, $v := .NetworkSettings.Networks}}{{$k}}={{$v.IPAddress}} {{end}}",
                "backend=10.0.0.5 bridge=172.17.0.2 ",
            ),
            (
                "{{range $i, $e := .Config.Env}}{{$i}}:{{$e}},{{end}}",
                "0:A=1,1:B=2,",
            ),
            ("{{range $e := .Config.Env}}{{$e}};{{end}}", "A=1;B=2;"),
        ]);
    }

    #[test]
    fn control_flow() {
        check(&[
            ("{{if .State.Running}}up{{else}}down{{end}}", "up"),
            ("{{if .State.Paused}}up{{else}}down{{end}}", "down"),
            (
                "{{if .State.Paused}}p{{else if .State.Running}}r{{else}}x{{end}}",
                "r",
            ),
            (
                "{{if .Missing}}p{{else if .Config.Volumes}}v{{else}}x{{end}}",
                "x",
            ),
            (
                "{{if .Mounts}}m{{end}}|{{if .Config.ExposedPorts}}e{{end}}",
                "|e",
            ),
            ("{{if .State.Error}}err{{else}}ok{{end}}", "ok"),
            ("{{with .State}}{{.Status}}{{end}}", "running"),
            ("{{with .Config.Volumes}}v{{else}}none{{end}}", "none"),
            (
                "{{with .Missing}}m{{else with .State}}{{.Pid}}{{end}}",
                "4242",
            ),
            ("{{range .Config.Env}}{{println .}}{{end}}", "A=1\nB=2\n"),
            ("{{range .Mounts}}m{{else}}no mounts{{end}}", "no mounts"),
            ("{{range .Config.Volumes}}v{{else}}none{{end}}", "none"),
            ("{{range .Config.Labels}}{{.}},{{end}}", "yes,ops,"),
            ("{{range 3}}{{.}}{{end}}", "012"),
            (
                "{{range .Config.Cmd}}{{if eq . \"-g\"}}{{break}}{{end}}{{.}}{{end}}",
                "nginx",
            ),
            (
                "{{range .Config.Cmd}}{{if eq . \"-g\"}}{{continue}}{{end}}{{.}};{{end}}",
                "nginx;daemon off;;",
            ),
            (
                "{{range .Config.Env}}{{range $.Config.Cmd}}{{break}}{{end}}{{.}}{{end}}",
                "A=1B=2",
            ),
            ("{{if\n  .State.Running\n}}multi-line{{end}}", "multi-line"),
        ]);
    }

    #[test]
    fn pipelines_and_parentheses() {
        check(&[
            ("{{.Name | printf \"%q\"}}", "\"/web\""),
            ("{{.Config.Env | len}}", "2"),
            ("{{.Name | upper | printf \"<%s>\"}}", "</WEB>"),
            (
                "{{(index .NetworkSettings.Networks \"bridge\").IPAddress}}",
                "172.17.0.2",
            ),
            ("{{len (split .Id \"a\")}}", "3"),
            (
                "{{printf \"%s-%d\" (upper .State.Status) (len .Config.Env)}}",
                "RUNNING-2",
            ),
            (
                "{{if and .State.Running (eq .State.Pid 4242)}}yes{{end}}",
                "yes",
            ),
        ]);
    }

    #[test]
    fn functions() {
        check(&[
            (
                "{{json .RootFS}}",
                r#"{"Layers":["sha256:aaa","sha256:bbb"],"Type":"layers"}"#,
            ),
            (
                "{{json .Config.Labels}}",
                r#"{"com.example":"yes","maintainer":"ops"}"#,
            ),
            (
                "{{json .Name}} {{json .Config.Volumes}} {{json .State.Pid}}",
                r#""/web" null 4242"#,
            ),
            (
                "{{json .Size}} {{json .Ratio}} {{json .Weird}}",
                r#"1700000000 0.25 "a\"b\n""#,
            ),
            ("{{json \"<&>\"}}", r#""<&>""#),
            ("{{index .Config.Labels \"com.example\"}}", "yes"),
            ("{{index .Config.Labels \"nope\"}}", "<no value>"),
            ("{{index .Config.Env 1}}", "B=2"),
            (
                "{{index .NetworkSettings.Ports \"80/tcp\" 0 \"HostPort\"}}",
                "8080",
            ),
            ("{{index .Config.Env}}", "[A=1 B=2]"),
            (
                "{{len .Config.Labels}} {{len .Name}} {{len .Mounts}}",
                "2 4 0",
            ),
            ("{{join .Config.Cmd \" \"}}", "nginx -g daemon off;"),
            ("{{join .Config.Env \",\"}}", "A=1,B=2"),
            ("{{split \"a,b,,c\" \",\"}}", "[a b  c]"),
            (
                "{{upper .State.Status}} {{lower \"MiXed\"}}",
                "RUNNING mixed",
            ),
            ("{{title \"hello wide-world_x\"}}", "Hello Wide-World_x"),
            (
                "{{slice .Id 0 4}} {{slice .Config.Cmd 1}}",
                "3f2a [-g daemon off;]",
            ),
            ("{{slice .Config.Env 1 2}}", "[B=2]"),
            ("[{{pad .Name 1 2}}] {{truncate .Id 6}}", "[ /web  ] 3f2a9c"),
            ("{{print 1 2 \"a\" \"b\" 3}}", "1 2ab3"),
            ("{{print .Missing}}", "<nil>"),
            ("{{println \"a\" 1}}", "a 1\n"),
        ]);
    }

    #[test]
    fn comparisons_and_logic() {
        check(&[
            ("{{eq .State.Status \"running\"}}", "true"),
            ("{{eq .State.Status \"paused\" \"running\"}}", "true"),
            (
                "{{ne .State.Pid 1}} {{eq .Missing \"x\"}} {{eq .Config.Volumes nil}}",
                "true false true",
            ),
            (
                "{{lt .State.Pid 5000}} {{le 2 2}} {{gt .Ratio 0.1}} {{ge 1 2}}",
                "true true true false",
            ),
            ("{{lt \"a\" \"b\"}} {{eq 1 1.0}}", "true true"),
            ("{{and .State.Running .Name}}", "/web"),
            ("{{and .State.Paused .Missing.X}}", "false"),
            ("{{or .Config.Volumes \"none\"}}", "none"),
            ("{{or .Name .Missing.X}}", "/web"),
            ("{{not .State.Running}} {{not .Mounts}}", "false true"),
            ("{{.State.Running | and true}}", "true"),
        ]);
    }

    #[test]
    fn printf_verbs() {
        check(&[
            ("{{printf \"%-10s|\" .Name}}", "/web      |"),
            ("{{printf \"%10s|\" .Name}}", "      /web|"),
            (
                "{{printf \"%d|%5d|%-5d|%05d|%+d\" 42 42 42 42 42}}",
                "42|   42|42   |00042|+42",
            ),
            (
                "{{printf \"%v %t %q %%\" .Config.Env true \"x\"}}",
                "[A=1 B=2] true \"x\" %",
            ),
            (
                "{{printf \"%s\" .Config.Env}} {{printf \"%q\" .Config.Env}}",
                "[A=1 B=2] [\"A=1\" \"B=2\"]",
            ),
            ("{{printf \"%q\" .Weird}}", r#""a\"b\n""#),
            (
                "{{printf \"%.2f %f %e\" .Ratio 1.5 1234.5}}",
                "0.25 1.500000 1.234500e+03",
            ),
            (
                "{{printf \"%g %.3g %.3g\" .Size 1234.5678 12.345}}",
                "1.7e+09 1.23e+03 12.3",
            ),
            (
                "{{printf \"%x %X %o %b %c\" 255 255 8 5 65}}",
                "ff FF 10 101 A",
            ),
            ("{{printf \"%.3s|%6.2f\" .Id 3.14159}}", "3f2|  3.14"),
            (
                "{{printf \"%v|%s\" .Config.Volumes .Config.Volumes}}",
                "<nil>|%!s(<nil>)",
            ),
            ("{{printf \"%s\"}}", "%!s(MISSING)"),
            ("{{printf \"%d\" \"x\"}}", "%!d(string=x)"),
            ("{{printf \"a\" 1 \"b\"}}", "a%!(EXTRA int=1, string=b)"),
            (
                "{{printf \"%v\" .Config.Labels}}",
                "map[com.example:yes maintainer:ops]",
            ),
            ("{{printf \"%d\" .State.Pid}}", "4242"),
            ("{{printf \"100%\"}}", "100%!(NOVERB)"),
        ]);
    }

    #[test]
    fn go_float_formatting() {
        let cases = [
            (1.7e9, "1.7e+09"),
            (123456.0, "123456"),
            (1234567.0, "1.234567e+06"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-2.5, "-2.5"),
            (1e21, "1e+21"),
            (0.0, "0"),
        ];
        for (f, want) in cases {
            assert_eq!(go_float(f), want, "{f}");
        }
    }

    #[test]
    fn parse_errors() {
        check_err(&[
            ("{{.Id", "template: :1: unclosed action"),
            ("{{foo .Id}}", r#"template: :1: function "foo" not defined"#),
            ("{{if .X}}", "template: :1: unexpected EOF"),
            ("{{range .X}}{{else}}", "template: :1: unexpected EOF"),
            ("{{end}}", "template: :1: unexpected {{end}}"),
            ("{{else}}", "template: :1: unexpected {{else}}"),
            (
                "{{if .X}}{{else}}{{else}}{{end}}",
                "template: :1: expected end; found {{else}}",
            ),
            ("{{$x}}", r#"template: :1: undefined variable "$x""#),
            ("{{$x = 1}}", r#"template: :1: undefined variable "$x""#),
            (
                "{{if $x := 1}}{{end}}{{$x}}",
                r#"template: :1: undefined variable "$x""#,
            ),
            ("{{\"abc}}", "template: :1: unterminated quoted string"),
            ("{{`abc}}", "template: :1: unterminated raw quoted string"),
            ("{{(len .X}}", "template: :1: unclosed left paren"),
            ("{{len .X)}}", r#"template: :1: unexpected ")" in command"#),
            ("{{}}", "template: :1: missing value for command"),
            ("{{.X |}}", "template: :1: missing value for command"),
            ("{{break}}", "template: :1: {{break}} outside {{range}}"),
            (
                "{{.Id | 3}}",
                "template: :1: non executable command in pipeline stage 2",
            ),
            (
                "a\nb\n{{bad}}",
                r#"template: :3: function "bad" not defined"#,
            ),
            (
                "{{ ! }}",
                "template: :1: unrecognized character in action: U+0021 '!'",
            ),
            ("{{/* open", "template: :1: unclosed comment"),
            (
                "{{\"\\q\"}}",
                r#"template: :1: invalid syntax in string "\\q""#,
            ),
            (
                "{{define \"x\"}}{{end}}",
                "template: :1: {{define}} is not supported",
            ),
            (
                "{{if 1}}{{else with 2}}{{end}}",
                "template: :1: unexpected {{else with}} in if",
            ),
            (
                "{{$a, $b := .X}}",
                "template: :1: too many declarations in command",
            ),
            ("{{08}}", r#"template: :1: bad number syntax: "08""#),
            (
                &format!("{{{{{}1{}}}}}", "(".repeat(2000), ")".repeat(2000)),
                "template: :1: max expression depth exceeded",
            ),
        ]);
    }

    #[test]
    fn exec_errors() {
        let at = |ctx: &str, msg: &str| format!("template: :1:2: executing \"\" at <{ctx}>: {msg}");
        let cases = [
            (
                "{{.Name.Foo}}",
                at(".Name.Foo", "can't evaluate field Foo in type string"),
            ),
            (
                "{{.Config.Volumes.X}}",
                at(".Config.Volumes.X", "nil pointer evaluating interface {}.X"),
            ),
            (
                "{{index .Config.Env 5}}",
                at(
                    "index .Config.Env 5",
                    "error calling index: index out of range: 5",
                ),
            ),
            (
                "{{index .Config.Env \"a\"}}",
                at(
                    "index .Config.Env \"a\"",
                    "error calling index: cannot index slice/array with type string",
                ),
            ),
            (
                "{{len 3}}",
                at("len 3", "error calling len: len of type int"),
            ),
            (
                "{{upper 3}}",
                at("upper 3", "wrong type for value; expected string; got int"),
            ),
            (
                "{{json}}",
                at("json", "wrong number of args for json: want 1 got 0"),
            ),
            (
                "{{lt .Name 3}}",
                at(
                    "lt .Name 3",
                    "error calling lt: incompatible types for comparison",
                ),
            ),
            (
                "{{eq .Mounts 3}}",
                at(
                    "eq .Mounts 3",
                    "error calling eq: non-comparable type []interface {}",
                ),
            ),
            (
                "{{range .Name}}{{end}}",
                at(".Name", "range can't iterate over /web"),
            ),
            ("{{nil}}", at("nil", "nil is not a command")),
            (
                "{{.Name .Id}}",
                at(".Name", "Name is not a method but has arguments"),
            ),
            (
                "{{.Id | .Name}}",
                at(".Name", "Name is not a method but has arguments"),
            ),
            (
                "{{slice .Id 3 99}}",
                at(
                    "slice .Id 3 99",
                    "error calling slice: index out of range: 99",
                ),
            ),
        ];
        for (src, want) in cases {
            let want = want.replace(
                ":1:2:",
                if src.starts_with("{{.Id |") || src.starts_with("{{range") {
                    ":1:8:"
                } else {
                    ":1:2:"
                },
            );
            match render(src) {
                Ok(got) => panic!("template {src:?} rendered {got:?}"),
                Err(e) => assert_eq!(e.to_string(), want, "template {src:?}"),
            }
        }
        let deep = format!("{{{{{}1{}}}}}", "(".repeat(90), ")".repeat(90));
        assert_eq!(render(&deep).unwrap(), "1");
        let blocks = format!("{}x{}", "{{if 1}}".repeat(90), "{{end}}".repeat(90));
        assert_eq!(render(&blocks).unwrap(), "x");
        let err = render("line1\n  {{.Name.Foo}}").map(|_| ()).unwrap_err();
        assert!(
            err.to_string().starts_with("template: :2:4: executing"),
            "{err}"
        );
    }

    #[test]
    fn renders_other_shapes() {
        // `amber images --format` runs over one summary object per image.
        let image = json!({"Repository": "busybox", "Tag": "latest", "Size": 4261550, "Created": 1700000000.0});
        let t = Template::parse("{{.Repository}}:{{.Tag}}\t{{.Size}}\t{{.Created}}").unwrap();
        assert_eq!(
            t.render(&image).unwrap(),
            "busybox:latest\t4261550\t1.7e+09"
        );
        // A parsed template renders many times, and over non-object data.
        let t = Template::parse("{{.}}|{{len .}}").unwrap();
        assert_eq!(t.render(&json!(["x", "y"])).unwrap(), "[x y]|2");
        assert_eq!(t.render(&json!("abc")).unwrap(), "abc|3");
        let t = Template::parse("{{range .}}{{.Names}} {{end}}").unwrap();
        assert_eq!(
            t.render(&json!([{"Names": ["/a"]}, {"Names": ["/b"]}]))
                .unwrap(),
            "[/a] [/b] "
        );
    }
}
