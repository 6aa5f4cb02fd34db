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
//!
//! Text flows `lex` → `parse` (the syntax tree) → `exec`, which calls the
//! builtins in `funcs` and prints values through `printf`.

mod exec;
mod funcs;
mod lex;
mod parse;
mod printf;
#[cfg(test)]
mod tests;

use serde_json::Value;

use parse::Node;

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
        Ok(Template {
            nodes: parse::parse(src)?,
        })
    }

    /// Execute the template with `data` as both `.` and `$`.
    pub fn render(&self, data: &Value) -> Result<String, TemplateError> {
        exec::render(&self.nodes, data)
    }
}

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
