//! Execution: walks the syntax tree over a JSON value, writing the output.

use std::borrow::Cow;

use serde_json::Value;

use super::funcs::{builtin, CallError};
use super::parse::{Branch, Cmd, Ctx, Node, Operand, Pipe, Term};
use super::printf::{as_int, go_string, go_type, write_value};
use super::TemplateError;

/// Execute `nodes` with `data` as both `.` and `$`.
pub(super) fn render(nodes: &[Node], data: &Value) -> Result<String, TemplateError> {
    let root = Some(Cow::Borrowed(data));
    let mut state = State {
        vars: vec![("$".to_string(), root.clone())],
        out: String::new(),
    };
    state.walk(nodes, &root)?;
    Ok(state.out)
}

/// A value during execution; `None` is Go's "no value" (a missing map key).
pub(super) type Val<'d> = Option<Cow<'d, Value>>;

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

pub(super) fn truth_value(v: &Value) -> bool {
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
