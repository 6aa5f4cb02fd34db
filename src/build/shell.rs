//! Docker's word processing of instruction arguments: quotes, the escape
//! character and variable substitution (`$V`, `${V}`, `${V:-w}`, `${V-w}`,
//! `${V:+w}`, `${V+w}`, `${V:?msg}`, `${V?msg}`), as the Dockerfile
//! reference describes for ADD, COPY, ENV, EXPOSE, FROM, LABEL, STOPSIGNAL,
//! USER, VOLUME, WORKDIR and ARG. RUN, CMD and ENTRYPOINT are left to the
//! shell in the container.

/// Expand one word: quotes removed, variables substituted, no splitting.
pub fn process_word(
    word: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    escape: char,
) -> Result<String, String> {
    let mut lx = Lexer::new(word, lookup, escape);
    let words = lx.run(None, false)?;
    Ok(words.into_iter().next().unwrap_or_default())
}

/// Expand and split into words on unquoted whitespace (EXPOSE, VOLUME,
/// COPY sources).
pub fn process_words(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    escape: char,
) -> Result<Vec<String>, String> {
    let mut lx = Lexer::new(text, lookup, escape);
    lx.run(None, true)
}

/// Expand the variables of a heredoc body (an unquoted delimiter): `$V`
/// and `${V...}` forms, the escape character before `$` or itself; quotes
/// and everything else are kept as written.
pub fn expand_heredoc(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    escape: char,
) -> Result<String, String> {
    let mut lx = Lexer::new(text, lookup, escape);
    let mut out = String::new();
    while let Some(c) = lx.next() {
        match c {
            '$' => out.push_str(&lx.dollar()?),
            c if c == escape && matches!(lx.peek(), Some(n) if n == '$' || n == escape) => {
                if let Some(n) = lx.next() {
                    out.push(n);
                }
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

struct Lexer<'a> {
    chars: Vec<char>,
    pos: usize,
    lookup: &'a dyn Fn(&str) -> Option<String>,
    escape: char,
}

impl<'a> Lexer<'a> {
    fn new(s: &str, lookup: &'a dyn Fn(&str) -> Option<String>, escape: char) -> Self {
        Lexer {
            chars: s.chars().collect(),
            pos: 0,
            lookup,
            escape,
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += 1;
        Some(c)
    }

    /// Process until `stop` (consumed) or the end; split words when asked.
    fn run(&mut self, stop: Option<char>, split: bool) -> Result<Vec<String>, String> {
        let mut words = Vec::new();
        let mut cur = String::new();
        let mut started = false;
        while let Some(c) = self.next() {
            if Some(c) == stop {
                break;
            }
            match c {
                c if c == self.escape => {
                    started = true;
                    match self.next() {
                        Some(n) => cur.push(n),
                        None => cur.push(c),
                    }
                }
                '\'' => {
                    started = true;
                    self.single_quoted(&mut cur)?;
                }
                '"' => {
                    started = true;
                    self.double_quoted(&mut cur)?;
                }
                '$' => {
                    let value = self.dollar()?;
                    if split {
                        // Unquoted expansions split on whitespace, as a shell does.
                        let mut parts = value.split(char::is_whitespace).peekable();
                        while let Some(p) = parts.next() {
                            cur.push_str(p);
                            started |= !p.is_empty();
                            if parts.peek().is_some() && started {
                                words.push(std::mem::take(&mut cur));
                                started = false;
                            }
                        }
                    } else {
                        cur.push_str(&value);
                        started = true;
                    }
                }
                c if split && c.is_whitespace() => {
                    if started {
                        words.push(std::mem::take(&mut cur));
                        started = false;
                    }
                }
                c => {
                    started = true;
                    cur.push(c);
                }
            }
        }
        if started || (!split && words.is_empty()) {
            words.push(cur);
        }
        Ok(words)
    }

    fn single_quoted(&mut self, cur: &mut String) -> Result<(), String> {
        loop {
            match self.next() {
                Some('\'') => return Ok(()),
                Some(c) => cur.push(c),
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching single-quote"
                            .into(),
                    )
                }
            }
        }
    }

    fn double_quoted(&mut self, cur: &mut String) -> Result<(), String> {
        loop {
            match self.next() {
                Some('"') => return Ok(()),
                Some('$') => {
                    let v = self.dollar()?;
                    cur.push_str(&v);
                }
                Some(c) if c == self.escape => match self.peek() {
                    Some(n) if n == '"' || n == '$' || n == self.escape => {
                        self.pos += 1;
                        cur.push(n);
                    }
                    _ => cur.push(c),
                },
                Some(c) => cur.push(c),
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching double-quote"
                            .into(),
                    )
                }
            }
        }
    }

    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || c == '_' {
                name.push(c);
                self.pos += 1;
            } else {
                break;
            }
        }
        name
    }

    /// After a `$`: the expansion's value.
    fn dollar(&mut self) -> Result<String, String> {
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".into());
            }
            return Ok((self.lookup)(&name).unwrap_or_default());
        }
        self.pos += 1;
        let name = self.name();
        if name.is_empty() {
            return Err("missing ':' in substitution: empty variable name".into());
        }
        let value = (self.lookup)(&name);
        let colon = self.peek() == Some(':');
        if colon {
            self.pos += 1;
        }
        let op = self.next().ok_or("missing '}' in substitution")?;
        if op == '}' && !colon {
            return Ok(value.unwrap_or_default());
        }
        if !matches!(op, '-' | '+' | '?') {
            return Err(format!("unsupported modifier ({op}) in substitution"));
        }
        let word = self.run(Some('}'), false)?.concat();
        // `:` tests for unset or empty; without it, for unset only.
        let set = match &value {
            Some(v) => !(colon && v.is_empty()),
            None => false,
        };
        match op {
            '-' => Ok(if set { value.unwrap_or_default() } else { word }),
            '+' => Ok(if set { word } else { String::new() }),
            _ if set => Ok(value.unwrap_or_default()),
            _ if word.is_empty() => Err(format!("{name}: is not allowed to be unset")),
            _ => Err(format!("{name}: {word}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(k: &str) -> Option<String> {
        match k {
            "A" => Some("a".into()),
            "EMPTY" => Some(String::new()),
            "SP" => Some("x y".into()),
            "JAVA_HOME" => Some("/usr/local/java".into()),
            _ => None,
        }
    }

    fn w(s: &str) -> String {
        process_word(s, &env, '\\').unwrap()
    }

    #[test]
    fn substitution_forms() {
        let table = [
            ("$A", "a"),
            ("${A}", "a"),
            ("pre${A}post", "preapost"),
            ("$JAVA_HOME/bin:$PATH", "/usr/local/java/bin:"),
            ("${NOPE:-def}", "def"),
            ("${EMPTY:-def}", "def"),
            ("${EMPTY-def}", ""),
            ("${A:-def}", "a"),
            ("${A:+alt}", "alt"),
            ("${NOPE:+alt}", ""),
            ("${EMPTY+alt}", "alt"),
            ("${EMPTY:+alt}", ""),
            ("${NOPE:-${A}x}", "ax"),
            ("'$A'", "$A"),
            ("\"$A b\"", "a b"),
            ("\\$A", "$A"),
            ("\"\\$A\"", "$A"),
            ("a\\ b", "a b"),
            ("$", "$"),
            ("$-", "$-"),
            ("100%", "100%"),
        ];
        for (input, want) in table {
            assert_eq!(w(input), want, "{input}");
        }
    }

    #[test]
    fn errors() {
        assert!(process_word("${NOPE:?must be set}", &env, '\\')
            .unwrap_err()
            .contains("must be set"));
        assert!(process_word("${A", &env, '\\').is_err());
        assert!(process_word("'open", &env, '\\').is_err());
        assert!(process_word("${A:=x}", &env, '\\').is_err());
    }

    #[test]
    fn heredoc_bodies() {
        let got = expand_heredoc("a=$A '${A}' \\$A \"q\"\n", &env, '\\').unwrap();
        assert_eq!(got, "a=a 'a' $A \"q\"\n");
    }

    #[test]
    fn words_and_escape_token() {
        let ws = process_words("a \"b c\" $SP  'd'", &env, '\\').unwrap();
        assert_eq!(ws, vec!["a", "b c", "x", "y", "d"]);
        assert_eq!(process_words("", &env, '\\').unwrap(), Vec::<String>::new());
        assert_eq!(process_word("c:\\dir", &env, '`').unwrap(), "c:\\dir");
        assert_eq!(process_word("`$A", &env, '`').unwrap(), "$A");
    }

    proptest::proptest! {
        #[test]
        fn never_panics(text in "\\PC{0,80}") {
            let _ = process_words(&text, &env, '\\');
            let _ = process_word(&text, &env, '`');
            let _ = expand_heredoc(&text, &env, '\\');
        }

        /// Plain words without special characters come back as they were.
        #[test]
        fn plain_words_round_trip(words in proptest::collection::vec("[a-zA-Z0-9_./:-]{1,10}", 0..6)) {
            let got = process_words(&words.join(" "), &env, '\\').unwrap();
            proptest::prop_assert_eq!(got, words);
        }
    }
}
