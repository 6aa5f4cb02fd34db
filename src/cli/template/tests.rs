use serde_json::{json, Value};

use super::printf::{go_float, go_string};
use super::{Template, TemplateError};

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
    let image =
        json!({"Repository": "busybox", "Tag": "latest", "Size": 4261550, "Created": 1700000000.0});
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
