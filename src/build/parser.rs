//! The Dockerfile grammar: parser directives (`# escape=`, `# syntax=`),
//! comments, line continuations, instruction keywords (case-insensitive),
//! leading `--flags`, exec (JSON) and shell forms, and heredocs
//! (`RUN <<EOF`). Variable substitution happens later, per instruction, with
//! the values of the moment (see `shell`).

use std::fmt;

/// The instructions of the Dockerfile reference.
pub const KEYWORDS: &[&str] = &[
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

/// Instructions whose arguments may be a JSON array (exec form).
const JSON_FORMS: &[&str] = &["ADD", "CMD", "COPY", "ENTRYPOINT", "RUN", "SHELL", "VOLUME"];

/// Instructions that may carry heredocs.
const HEREDOC_FORMS: &[&str] = &["ADD", "COPY", "RUN"];

/// A syntax error, with the Dockerfile line it is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Dockerfile parse error line {}: {}",
            self.line, self.message
        )
    }
}

/// An instruction's arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Args {
    /// Exec form: a JSON array of strings.
    Json(Vec<String>),
    /// Shell form: the text after the keyword and flags, as written.
    Text(String),
}

/// A heredoc body (`<<EOF` ... `EOF`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The delimiter word.
    pub name: String,
    /// The lines between, each ending in `\n`.
    pub content: String,
    /// Quoted delimiter: no expansion inside.
    pub quoted: bool,
}

/// One instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// 1-based line of the keyword.
    pub line: usize,
    /// Upper-case keyword.
    pub keyword: String,
    /// Leading `--name=value` flags, without the dashes.
    pub flags: Vec<(String, Option<String>)>,
    /// The arguments.
    pub args: Args,
    /// Heredoc bodies, in order of their delimiters.
    pub heredocs: Vec<Heredoc>,
    /// The instruction as written (continuations joined), for `Step N/M`.
    pub original: String,
}

impl Instruction {
    /// A flag's value; `Some("")` for a flag given without a value.
    pub fn flag(&self, name: &str) -> Option<&str> {
        self.flags
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_deref().unwrap_or(""))
    }

    /// The arguments as one text (JSON forms re-joined with spaces).
    pub fn text(&self) -> String {
        match &self.args {
            Args::Text(t) => t.clone(),
            Args::Json(v) => v.join(" "),
        }
    }

    /// Refuse flags other than `allowed`.
    pub fn check_flags(&self, allowed: &[&str]) -> Result<(), ParseError> {
        match self
            .flags
            .iter()
            .find(|(n, _)| !allowed.contains(&n.as_str()))
        {
            Some((n, _)) => Err(ParseError {
                line: self.line,
                message: format!("unknown flag: {n}"),
            }),
            None => Ok(()),
        }
    }
}

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    /// The escape character (`\` unless `# escape=` says otherwise).
    pub escape: char,
    /// Instructions in order.
    pub instructions: Vec<Instruction>,
}

/// Parse a Dockerfile.
pub fn parse(text: &str) -> Result<Dockerfile, ParseError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = text.lines().collect();
    let (escape, mut i) = directives(&lines)?;
    let mut instructions = Vec::new();
    while i < lines.len() {
        let trimmed = lines[i].trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            i += 1;
            continue;
        }
        let start = i;
        let (joined, next) = join_continuations(&lines, i, escape);
        i = next;
        let mut ins = instruction(&joined, start + 1)?;
        if HEREDOC_FORMS.contains(&ins.keyword.as_str()) {
            i = read_heredocs(&mut ins, &lines, i, escape)?;
        }
        instructions.push(ins);
    }
    Ok(Dockerfile {
        escape,
        instructions,
    })
}

/// Parse the text of one instruction (also used for ONBUILD triggers).
pub fn parse_instruction(text: &str, line: usize) -> Result<Instruction, ParseError> {
    instruction(text, line)
}

/// The leading `# key=value` directives; returns the escape character and
/// the first line after them.
fn directives(lines: &[&str]) -> Result<(char, usize), ParseError> {
    let mut escape = '\\';
    let mut seen = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some((key, value)) = directive(line) else {
            return Ok((escape, i));
        };
        if seen.contains(&key) {
            return Err(ParseError {
                line: i + 1,
                message: format!("only one {key} parser directive can be used"),
            });
        }
        if key == "escape" {
            escape = match value.as_str() {
                "\\" => '\\',
                "`" => '`',
                other => {
                    return Err(ParseError {
                        line: i + 1,
                        message: format!("invalid escape token '{other}' does not match ` or \\"),
                    })
                }
            };
        }
        seen.push(key);
    }
    Ok((escape, lines.len()))
}

/// `# escape=` or `# syntax=` (other keys end the directives, as comments).
fn directive(line: &str) -> Option<(String, String)> {
    let rest = line.trim_start().strip_prefix('#')?;
    let (key, value) = rest.split_once('=')?;
    let key = key.trim().to_ascii_lowercase();
    if key != "escape" && key != "syntax" {
        return None;
    }
    Some((key, value.trim().to_string()))
}

/// The instruction starting at `lines[i]` with its continuation lines
/// (comment and empty lines inside are dropped); the next line index.
fn join_continuations(lines: &[&str], mut i: usize, escape: char) -> (String, usize) {
    let mut out = String::new();
    loop {
        let line = lines[i];
        i += 1;
        let end = line.trim_end();
        match end.strip_suffix(escape) {
            Some(head) => out.push_str(head),
            None => {
                out.push_str(line);
                return (out, i);
            }
        }
        // Skip comment and blank lines inside a continuation.
        while i < lines.len() {
            let t = lines[i].trim_start();
            if t.starts_with('#') || t.is_empty() {
                i += 1;
            } else {
                break;
            }
        }
        if i >= lines.len() {
            return (out, i);
        }
    }
}

fn instruction(text: &str, line: usize) -> Result<Instruction, ParseError> {
    let err = |message: String| ParseError { line, message };
    let text = text.trim();
    let (word, rest) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
    let keyword = word.to_ascii_uppercase();
    if !KEYWORDS.contains(&keyword.as_str()) {
        return Err(err(format!("unknown instruction: {word}")));
    }
    let (flags, rest) = if keyword == "ONBUILD" {
        (Vec::new(), rest.trim())
    } else {
        leading_flags(rest.trim())
    };
    let args = if JSON_FORMS.contains(&keyword.as_str()) {
        match json_array(rest) {
            Some(v) => Args::Json(v),
            None => Args::Text(rest.to_string()),
        }
    } else {
        Args::Text(rest.to_string())
    };
    if rest.is_empty() && !matches!(keyword.as_str(), "RUN" | "CMD" | "ENTRYPOINT") {
        return Err(err(format!("{keyword} requires at least one argument")));
    }
    Ok(Instruction {
        line,
        keyword,
        flags,
        args,
        heredocs: Vec::new(),
        original: text.to_string(),
    })
}

/// Split `--name[=value]` words off the front.
fn leading_flags(mut rest: &str) -> (Vec<(String, Option<String>)>, &str) {
    let mut flags = Vec::new();
    while let Some(after) = rest.strip_prefix("--") {
        let (word, tail) = after.split_once(char::is_whitespace).unwrap_or((after, ""));
        if word.is_empty() {
            break;
        }
        match word.split_once('=') {
            Some((n, v)) => flags.push((n.to_string(), Some(v.to_string()))),
            None => flags.push((word.to_string(), None)),
        }
        rest = tail.trim_start();
    }
    (flags, rest)
}

/// A JSON array of strings, or None for the shell form.
fn json_array(s: &str) -> Option<Vec<String>> {
    if !s.starts_with('[') {
        return None;
    }
    serde_json::from_str(s).ok()
}

/// Collect the bodies of the `<<WORD` / `<<-WORD` markers of `ins` from
/// the lines after it; returns the next line index.
fn read_heredocs(
    ins: &mut Instruction,
    lines: &[&str],
    mut i: usize,
    escape: char,
) -> Result<usize, ParseError> {
    let Args::Text(text) = &ins.args else {
        return Ok(i);
    };
    for (name, strip_tabs, quoted) in heredoc_markers(text, escape) {
        let mut content = String::new();
        let mut closed = false;
        while i < lines.len() {
            let raw = lines[i];
            i += 1;
            let line = if strip_tabs {
                raw.trim_start_matches('\t')
            } else {
                raw
            };
            if line == name {
                closed = true;
                break;
            }
            content.push_str(line);
            content.push('\n');
        }
        if !closed {
            return Err(ParseError {
                line: ins.line,
                message: format!("unterminated heredoc {name}"),
            });
        }
        ins.heredocs.push(Heredoc {
            name,
            content,
            quoted,
        });
    }
    Ok(i)
}

/// `<<EOF`, `<<-EOF`, `<<"EOF"`, `<<'EOF'` words of a shell-form text.
/// Words in quotes are not markers (`echo "<<EOF"`).
fn heredoc_markers(text: &str, escape: char) -> Vec<(String, bool, bool)> {
    let mut out = Vec::new();
    for word in raw_words(text, escape) {
        let Some(mut w) = word.strip_prefix("<<") else {
            continue;
        };
        let strip = w.starts_with('-');
        if strip {
            w = &w[1..];
        }
        let quoted = w.starts_with('"') || w.starts_with('\'');
        let name: String = w
            .trim_matches(|c| c == '"' || c == '\'')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            out.push((name, strip, quoted));
        }
    }
    out
}

/// Split `K=V K2="v 2"` (or the legacy `K V...`) into pairs, keeping quotes
/// and escapes for the later word processing (Docker's parseNameVal).
pub fn name_values(
    keyword: &str,
    text: &str,
    escape: char,
    line: usize,
) -> Result<Vec<(String, String)>, ParseError> {
    let err = |message: String| ParseError { line, message };
    let words = raw_words(text, escape);
    let Some(first) = words.first() else {
        return Err(err(format!("{keyword} requires at least one argument")));
    };
    if !first.contains('=') {
        // Legacy form: the first word is the name, the rest of the line the value.
        let value = text.trim_start()[first.len()..].trim();
        if value.is_empty() && keyword != "ARG" {
            return Err(err(format!(
                "{keyword} {first}: missing value (use {keyword} {first}=VALUE)"
            )));
        }
        return Ok(vec![(first.clone(), value.to_string())]);
    }
    let mut out = Vec::new();
    for w in words {
        let Some((k, v)) = w.split_once('=') else {
            return Err(err(format!(
                "Syntax error - can't find = in {w:?}. Must be of the form: name=value"
            )));
        };
        if k.is_empty() {
            return Err(err(format!("{keyword} names can not be blank")));
        }
        out.push((k.to_string(), v.to_string()));
    }
    Ok(out)
}

/// Whitespace-separated words, quotes and escapes kept verbatim.
pub(super) fn raw_words(text: &str, escape: char) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c == escape && quote != Some('\'') => {
                cur.push(c);
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            '"' | '\'' if quote.is_none() => {
                quote = Some(c);
                cur.push(c);
            }
            c if Some(c) == quote => {
                quote = None;
                cur.push(c);
            }
            c if c.is_whitespace() && quote.is_none() => {
                if !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    words
}

#[cfg(test)]
#[path = "parser_tests.rs"]
mod tests;
