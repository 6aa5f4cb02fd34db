//! `.dockerignore`: Docker's pattern rules. One pattern a line, `#`
//! comments, paths cleaned and relative to the context root, `*` `?` `[...]`
//! within one path component, `**` for any number of components, `!` for
//! exceptions; the last matching pattern decides, and a pattern that matches
//! a directory matches everything below it.

/// A compiled `.dockerignore`.
#[derive(Debug, Clone, Default)]
pub struct Ignore {
    patterns: Vec<Pattern>,
}

#[derive(Debug, Clone)]
struct Pattern {
    parts: Vec<String>,
    exclusion: bool,
}

impl Ignore {
    /// Parse the file's text.
    pub fn parse(text: &str) -> Ignore {
        let mut patterns = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (exclusion, p) = match line.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, line),
            };
            let mut parts = clean(p);
            // `**/**` is `**`; collapsing keeps matching polynomial.
            parts.dedup_by(|a, b| a == "**" && b == "**");
            if parts.is_empty() {
                continue;
            }
            patterns.push(Pattern { parts, exclusion });
        }
        Ignore { patterns }
    }

    /// Whether some pattern is an `!` exception (an ignored directory may
    /// then still hold kept files).
    pub fn has_exceptions(&self) -> bool {
        self.patterns.iter().any(|p| p.exclusion)
    }

    /// Whether nothing is ignored.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether the context path `rel` (slash-separated, relative) is ignored.
    pub fn ignored(&self, rel: &str) -> bool {
        let path = clean(rel);
        if path.is_empty() {
            return false;
        }
        let mut ignored = false;
        for p in &self.patterns {
            // The path itself or one of its parents.
            let hit = (1..=path.len()).any(|n| match_parts(&p.parts, &path[..n]));
            if hit {
                ignored = !p.exclusion;
            }
        }
        ignored
    }
}

/// Lexically cleaned components (`./a//b/../c` → `a`, `c`); a leading `/`
/// is the context root.
fn clean(p: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c.to_string()),
        }
    }
    out
}

fn match_parts(pat: &[String], path: &[String]) -> bool {
    match pat.split_first() {
        None => path.is_empty(),
        Some((first, rest)) if first == "**" => {
            (0..=path.len()).any(|skip| match_parts(rest, &path[skip..]))
        }
        Some((first, rest)) => match path.split_first() {
            Some((p, prest)) => glob(first, p) && match_parts(rest, prest),
            None => false,
        },
    }
}

/// Go's `filepath.Match` for one component: `*`, `?`, `[...]` (with `^`
/// or `!` negation and ranges) and `\` escapes.
pub fn glob(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    glob_at(&p, &n)
}

/// Iterative wildcard match: on a mismatch, only the last `*` is retried
/// one character further, so hostile patterns (`*a*a*a*...b`) stay linear
/// per star instead of exponential.
fn glob_at(p: &[char], n: &[char]) -> bool {
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if let Some(used) = step(p, pi, n[ni]) {
            if used == 0 {
                star = Some((pi, ni));
                pi += 1;
            } else {
                pi += used;
                ni += 1;
            }
            continue;
        }
        match star {
            Some((sp, sn)) => {
                pi = sp + 1;
                ni = sn + 1;
                star = Some((sp, sn + 1));
            }
            None => return false,
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Whether pattern position `pi` matches `c`: Some(pattern chars used), 0
/// for a `*`; None for a mismatch.
fn step(p: &[char], pi: usize, c: char) -> Option<usize> {
    match p.get(pi)? {
        '*' => Some(0),
        '?' => Some(1),
        '[' => match class(&p[pi + 1..], Some(c)) {
            Some((true, used)) => Some(1 + used),
            _ => None,
        },
        '\\' if pi + 1 < p.len() => (p[pi + 1] == c).then_some(2),
        x => (*x == c).then_some(1),
    }
}

/// Match `c` against a class starting after `[`; (matched, chars used
/// including the closing `]`), or None when the class is not closed.
fn class(p: &[char], c: Option<char>) -> Option<(bool, usize)> {
    let c = c?;
    let mut i = 0;
    let negate = matches!(p.first(), Some('^' | '!'));
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    while i < p.len() {
        if p[i] == ']' && !first {
            return Some((matched != negate, i + 1));
        }
        first = false;
        let lo = p[i];
        if i + 2 < p.len() && p[i + 1] == '-' && p[i + 2] != ']' {
            matched |= lo <= c && c <= p[i + 2];
            i += 3;
        } else {
            matched |= lo == c;
            i += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_rules() {
        let ig = Ignore::parse(
            "# comment\n*.md\n!README.md\ntarget\n/secret\n**/*.tmp\ndocs/**/draft\nbuild?\n",
        );
        let table = [
            ("notes.md", true),
            ("README.md", false),
            ("sub/notes.md", false), // `*.md` is anchored at the root
            ("target", true),
            ("target/debug/x", true), // a parent matches
            ("secret", true),
            ("a/b/c.tmp", true),
            ("c.tmp", true),
            ("docs/draft", true),
            ("docs/a/b/draft/x", true),
            ("build1", true),
            ("build12", false),
            ("src/main.rs", false),
        ];
        for (path, want) in table {
            assert_eq!(ig.ignored(path), want, "{path}");
        }
    }

    #[test]
    fn exceptions_and_order() {
        let ig = Ignore::parse("*\n!keep\n!dir/sub\n");
        assert!(ig.ignored("x"));
        assert!(!ig.ignored("keep"));
        assert!(ig.ignored("dir/other"));
        assert!(!ig.ignored("dir/sub/file"));
        // A later pattern overrides an earlier exception.
        let ig = Ignore::parse("!a\na\n");
        assert!(ig.ignored("a"));
        assert!(!Ignore::parse("").ignored("a"));
    }

    #[test]
    fn globs() {
        assert!(glob("*.rs", "main.rs"));
        assert!(glob("[a-c]x", "bx"));
        assert!(!glob("[!a-c]x", "bx"));
        assert!(glob("[^a-c]x", "dx"));
        assert!(glob("a\\*", "a*"));
        assert!(!glob("a\\*", "ab"));
        assert!(!glob("[ab", "a"));
        assert!(glob("?", "x") && !glob("?", ""));
        assert!(glob("a*b*c", "aXXbYYc") && !glob("a*b*c", "aXXbYY"));
        assert!(glob("*", "") && glob("**", "x") && !glob("x*", ""));
        // Linear, not exponential, on a hostile pattern.
        let t = std::time::Instant::now();
        assert!(!glob(&"*a".repeat(30), &"a".repeat(29)));
        assert!(!glob(&format!("{}b", "*a".repeat(30)), &"a".repeat(60)));
        assert!(t.elapsed() < std::time::Duration::from_secs(1));
    }
}
