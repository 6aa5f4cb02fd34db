use super::*;

fn one(text: &str) -> Instruction {
    let df = parse(text).unwrap();
    assert_eq!(df.instructions.len(), 1, "{df:?}");
    df.instructions.into_iter().next().unwrap()
}

#[test]
fn keywords_case_insensitive_and_lines() {
    let df = parse("# comment\n\nfrom busybox AS build\n  run echo hi\nCmd [\"sh\"]\n").unwrap();
    let k: Vec<(&str, usize)> = df
        .instructions
        .iter()
        .map(|i| (i.keyword.as_str(), i.line))
        .collect();
    assert_eq!(k, vec![("FROM", 3), ("RUN", 4), ("CMD", 5)]);
    assert_eq!(
        df.instructions[0].args,
        Args::Text("busybox AS build".into())
    );
    assert_eq!(df.instructions[2].args, Args::Json(vec!["sh".into()]));
}

#[test]
fn unknown_instruction_has_line() {
    let e = parse("FROM a\n\nFROBNICATE x\n").unwrap_err();
    assert_eq!(e.line, 3);
    assert_eq!(
        e.to_string(),
        "Dockerfile parse error line 3: unknown instruction: FROBNICATE"
    );
}

#[test]
fn continuations() {
    let i = one("RUN echo a \\\n  && echo b \\\n# comment inside\n\n  && echo c\n");
    assert_eq!(i.args, Args::Text("echo a   && echo b   && echo c".into()));
    assert_eq!(i.line, 1);
    // Trailing whitespace after the escape still continues.
    let i = one("ENV A=1 \\   \n    B=2");
    assert_eq!(i.args, Args::Text("A=1     B=2".into()));
    // A continuation on the last line ends the file.
    let i = one("RUN echo \\");
    assert_eq!(i.args, Args::Text("echo".into()));
}

#[test]
fn escape_directive() {
    let df = parse("# escape=`\nFROM a\nRUN dir c:\\ `\n  /w\n").unwrap();
    assert_eq!(df.escape, '`');
    assert_eq!(df.instructions[1].args, Args::Text("dir c:\\   /w".into()));
    // syntax is accepted and ignored; escape must be ` or \.
    assert_eq!(
        parse("# syntax=docker/dockerfile:1\nFROM a")
            .unwrap()
            .escape,
        '\\'
    );
    let e = parse("# escape=x\nFROM a").unwrap_err();
    assert_eq!(e.line, 1);
    // A directive after an instruction is a comment.
    let df = parse("FROM a\n# escape=`\nRUN x \\\n y").unwrap();
    assert_eq!(df.escape, '\\');
    assert_eq!(df.instructions[1].args, Args::Text("x  y".into()));
    assert!(parse("# escape=`\n# escape=\\\nFROM a").is_err());
}

#[test]
fn flags_and_forms() {
    let i = one("COPY --from=build --chown=1:2 [\"/a b\", \"/c\"]");
    assert_eq!(i.flag("from"), Some("build"));
    assert_eq!(i.flag("chown"), Some("1:2"));
    assert_eq!(i.args, Args::Json(vec!["/a b".into(), "/c".into()]));
    // Broken JSON falls back to the shell form.
    let i = one("CMD [\"sh\", ");
    assert_eq!(i.args, Args::Text("[\"sh\",".into()));
    // ENV never takes the JSON form.
    let i = one("ENV A=[1]");
    assert_eq!(i.args, Args::Text("A=[1]".into()));
    assert!(one("COPY --chmod=755 a b")
        .check_flags(&["from", "chown"])
        .is_err());
}

#[test]
fn missing_arguments() {
    let e = parse("FROM a\nENV\n").unwrap_err();
    assert_eq!(e.line, 2);
    assert!(e.message.contains("ENV requires at least one argument"));
    assert!(parse("FROM a\nRUN\n").is_ok());
}

#[test]
fn heredocs() {
    let df =
        parse("FROM a\nRUN <<EOF\necho one\necho two\nEOF\nRUN <<-END cat\n\tx\n\tEND\nCMD x\n")
            .unwrap();
    let r = &df.instructions[1];
    assert_eq!(r.heredocs.len(), 1);
    assert_eq!(r.heredocs[0].content, "echo one\necho two\n");
    assert_eq!(df.instructions[2].heredocs[0].content, "x\n");
    assert_eq!(df.instructions[3].keyword, "CMD");
    assert!(parse("FROM a\nRUN <<EOF\necho\n").is_err());
    // A quoted `<<EOF` is not a heredoc.
    let df = parse("FROM a\nRUN echo \"<<EOF\" 'x <<END'\nCMD y\n").unwrap();
    assert!(df.instructions[1].heredocs.is_empty());
    assert_eq!(df.instructions.len(), 3);
}

#[test]
fn name_value_forms() {
    let kv = name_values("ENV", "A=1 B=\"two words\" C=x\\ y", '\\', 1).unwrap();
    assert_eq!(
        kv,
        vec![
            ("A".into(), "1".into()),
            ("B".into(), "\"two words\"".into()),
            ("C".into(), "x\\ y".into())
        ]
    );
    let kv = name_values("ENV", "JAVA_HOME /usr/local/java 8", '\\', 1).unwrap();
    assert_eq!(kv, vec![("JAVA_HOME".into(), "/usr/local/java 8".into())]);
    assert!(name_values("ENV", "A=1 B", '\\', 1).is_err());
    assert!(name_values("ENV", "=1", '\\', 1).is_err());
    assert!(name_values("ENV", "A", '\\', 1).is_err());
    assert_eq!(
        name_values("ARG", "V", '\\', 1).unwrap(),
        vec![("V".into(), String::new())]
    );
}

#[test]
fn onbuild_keeps_its_trigger() {
    let i = one("ONBUILD COPY --chown=1 . /app");
    assert!(i.flags.is_empty());
    assert_eq!(i.args, Args::Text("COPY --chown=1 . /app".into()));
    let t = parse_instruction(&i.text(), 1).unwrap();
    assert_eq!(t.keyword, "COPY");
    assert_eq!(t.flag("chown"), Some("1"));
}

#[test]
fn crlf_and_bom() {
    let df = parse("\u{feff}FROM a\r\nRUN x \\\r\n  y\r\n").unwrap();
    assert_eq!(df.instructions[1].args, Args::Text("x   y".into()));
}

mod props {
    use super::*;
    use proptest::prelude::*;

    fn word() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9_][a-zA-Z0-9_./=-]{0,7}"
    }

    fn keyword() -> impl Strategy<Value = String> {
        (
            prop::sample::select(vec!["RUN", "ENV", "LABEL", "WORKDIR", "USER", "EXPOSE"]),
            any::<bool>(),
        )
            .prop_map(|(k, lower)| {
                if lower {
                    k.to_lowercase()
                } else {
                    k.to_string()
                }
            })
    }

    proptest! {
        #[test]
        fn never_panics(text in "\\PC{0,200}") {
            let _ = parse(&text);
        }

        /// Instructions split over continuation lines (with comments and
        /// blank lines inside) parse back to the same words.
        #[test]
        fn continuations_round_trip(
            lines in prop::collection::vec((keyword(), prop::collection::vec(word(), 1..5), any::<u8>()), 1..8)
        ) {
            let mut text = String::from("FROM base\n");
            let mut want = Vec::new();
            let mut line = 2;
            for (k, words, split) in &lines {
                want.push((k.to_uppercase(), words.join(" "), line));
                text.push_str(k);
                for (n, w) in words.iter().enumerate() {
                    text.push(' ');
                    text.push_str(w);
                    if split & (1 << (n % 8)) != 0 && n + 1 < words.len() {
                        text.push_str(" \\\n# inside\n\n");
                        line += 3;
                    }
                }
                text.push('\n');
                line += 1;
            }
            let df = parse(&text).unwrap();
            prop_assert_eq!(df.instructions.len(), lines.len() + 1);
            for (ins, (k, args, l)) in df.instructions[1..].iter().zip(want) {
                prop_assert_eq!(&ins.keyword, &k);
                prop_assert_eq!(ins.line, l);
                let got: Vec<String> = ins.text().split_whitespace().map(str::to_string).collect();
                let want: Vec<String> = args.split_whitespace().map(str::to_string).collect();
                prop_assert_eq!(got, want);
            }
        }
    }
}
