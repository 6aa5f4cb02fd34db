//! Parsing: the syntax tree of a template and the parser that builds it from
//! the lexer's tokens, checking functions and variables exist as Go does.

use serde_json::Value;

use super::lex::{lex, Item, Tok, Token};
use super::{line_col, parse_err, TemplateError};

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

/// Parse template text into its top-level nodes.
pub(super) fn parse(src: &str) -> Result<Vec<Node>, TemplateError> {
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
        Stop::Eof => Ok(nodes),
        Stop::End(pos) => Err(parse_err(src, pos, "unexpected {{end}}")),
        Stop::Else(pos, _) => Err(parse_err(src, pos, "unexpected {{else}}")),
    }
}

#[derive(Debug, Clone)]
pub(super) enum Node {
    Text(String),
    Print(Pipe),
    Cond { with: bool, branch: Branch },
    Range(Branch),
    Break,
    Continue,
}

#[derive(Debug, Clone)]
pub(super) struct Branch {
    pub(super) pipe: Pipe,
    pub(super) body: Vec<Node>,
    pub(super) alt: Vec<Node>,
}

#[derive(Debug, Clone)]
pub(super) struct Pipe {
    pub(super) decl: Vec<String>,
    pub(super) assign: bool,
    pub(super) cmds: Vec<Cmd>,
    pub(super) ctx: Ctx,
}

#[derive(Debug, Clone)]
pub(super) struct Cmd {
    pub(super) args: Vec<Operand>,
    pub(super) ctx: Ctx,
}

#[derive(Debug, Clone)]
pub(super) struct Operand {
    pub(super) term: Term,
    pub(super) ctx: Ctx,
}

#[derive(Debug, Clone)]
pub(super) enum Term {
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
pub(super) struct Ctx {
    line: usize,
    col: usize,
    pub(super) text: String,
}

impl Ctx {
    pub(super) fn err(&self, message: impl Into<String>) -> TemplateError {
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
