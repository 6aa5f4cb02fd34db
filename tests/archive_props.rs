//! Property tests: any well-formed layer tar (long names, hardlinks,
//! symlinks, odd modes) unpacks to exactly what it holds, and its diff_id is
//! the sha256 of the stream; references round-trip through their familiar
//! form.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::os::unix::fs::PermissionsExt;

use amber::archive::{extract_layer, ExtractOptions};
use amber::types::{Digest, Reference};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Node {
    File(Vec<u8>, u32),
    Symlink(String),
    Hardlink(usize),
}

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z]{1,8}",
        // Longer than the 100 bytes of a ustar name field.
        "[a-z]{100,140}",
        "[a-z0-9 ._-]{1,12}".prop_filter("not . or ..", |s| s != "."
            && s != ".."
            && !s.starts_with(".wh.")),
    ]
}

fn tree() -> impl Strategy<Value = Vec<(Vec<String>, Node)>> {
    let node = prop_oneof![
        4 => (proptest::collection::vec(any::<u8>(), 0..3000), prop_oneof![Just(0o644u32), Just(0o755), Just(0o600), Just(0o4755)])
            .prop_map(|(d, m)| Node::File(d, m)),
        1 => "[a-z]{1,8}".prop_map(Node::Symlink),
        1 => (0usize..100).prop_map(Node::Hardlink),
    ];
    proptest::collection::vec((proptest::collection::vec(name(), 1..4), node), 1..25)
}

fn build(entries: &[(Vec<String>, Node)]) -> (Vec<u8>, BTreeMap<String, Node>) {
    let mut b = tar::Builder::new(Vec::new());
    let mut expect: BTreeMap<String, Node> = BTreeMap::new();
    let mut files: Vec<String> = Vec::new();
    for (parts, node) in entries {
        let path = parts.join("/");
        // Skip paths that clash with an earlier entry or its parents.
        let clash = expect.keys().any(|k| {
            k == &path || path.starts_with(&format!("{k}/")) || k.starts_with(&format!("{path}/"))
        });
        if clash {
            continue;
        }
        let mut h = tar::Header::new_gnu();
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        match node {
            Node::File(data, mode) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(*mode);
                h.set_size(data.len() as u64);
                b.append_data(&mut h, &path, &data[..]).unwrap();
                files.push(path.clone());
                expect.insert(path, node.clone());
            }
            Node::Symlink(target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_size(0);
                b.append_link(&mut h, &path, target).unwrap();
                expect.insert(path, node.clone());
            }
            Node::Hardlink(i) => {
                let Some(target) = files.get(i % files.len().max(1)).cloned() else {
                    continue;
                };
                h.set_entry_type(tar::EntryType::Link);
                h.set_size(0);
                b.append_link(&mut h, &path, &target).unwrap();
                let Some(Node::File(d, m)) = expect.get(&target).cloned() else {
                    continue;
                };
                expect.insert(path, Node::File(d, m));
            }
        }
    }
    (b.into_inner().unwrap(), expect)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn tar_unpacks_to_what_it_holds(entries in tree()) {
        let (tar, expect) = build(&entries);
        let dir = tempfile::tempdir().unwrap();
        let summary = extract_layer(Cursor::new(&tar), dir.path(), &ExtractOptions::default()).unwrap();
        prop_assert_eq!(summary.diff_id, Digest::of(&tar));
        prop_assert_eq!(summary.tar_size, tar.len() as u64);
        for (path, node) in &expect {
            let p = dir.path().join(path);
            match node {
                Node::File(data, mode) => {
                    prop_assert_eq!(&std::fs::read(&p).unwrap(), data);
                    let got = std::fs::symlink_metadata(&p).unwrap().permissions().mode() & 0o7777;
                    prop_assert_eq!(got, *mode);
                }
                Node::Symlink(target) => {
                    let got = std::fs::read_link(&p).unwrap();
                    prop_assert_eq!(got.to_str().unwrap(), target.as_str());
                }
                Node::Hardlink(_) => unreachable!("recorded as files"),
            }
        }
    }

    #[test]
    fn references_round_trip(
        domain in prop_oneof![Just(String::new()), Just("localhost:5000/".to_string()), Just("reg.example.com/".to_string())],
        path in proptest::collection::vec("[a-z0-9]{1,6}([._-][a-z0-9]{1,4})?", 1..4),
        tag in proptest::option::of("[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}"),
    ) {
        let mut s = format!("{domain}{}", path.join("/"));
        if let Some(t) = &tag {
            s.push(':');
            s.push_str(t);
        }
        let r = Reference::parse(&s).unwrap();
        prop_assert_eq!(Reference::parse(&r.familiar()).unwrap(), r.clone());
        prop_assert_eq!(Reference::parse(&r.to_string()).unwrap(), r.clone());
        prop_assert_eq!(r.tag().unwrap(), tag.as_deref().unwrap_or("latest"));
    }
}
