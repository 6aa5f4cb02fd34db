//! `/etc/hosts` and `/etc/resolv.conf` of a container.

use std::io::Write;
use std::path::Path;

use super::NetError;

/// Docker's fixed lines.
const BASE: &str = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n";

/// A name line: an address and its names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostEntry {
    /// The address.
    pub ip: String,
    /// Names, first the canonical one.
    pub names: Vec<String>,
}

/// The file: Docker's base, the container's own entry, then its peers.
pub fn render(own: Option<&HostEntry>, peers: &[HostEntry]) -> String {
    let mut s = BASE.to_string();
    for e in own.into_iter().chain(peers) {
        if !e.names.is_empty() {
            s.push_str(&format!("{}\t{}\n", e.ip, e.names.join(" ")));
        }
    }
    s
}

/// Write a file that may be bind-mounted into a running container: in
/// place (a rename would leave the container on the old inode), so this
/// is the one place where a file is truncated and rewritten.
pub fn write_in_place(path: &Path, content: &str) -> Result<(), NetError> {
    let mut f = std::fs::File::options()
        .create(true)
        .write(true)
        .truncate(true)
        .open(path)
        .map_err(|e| NetError::io("open", path, e))?;
    f.write_all(content.as_bytes())
        .map_err(|e| NetError::io("write", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders() {
        let own = HostEntry {
            ip: "172.17.0.2".into(),
            names: vec!["abc".into()],
        };
        let peer = HostEntry {
            ip: "172.17.0.3".into(),
            names: vec!["db".into(), "store".into()],
        };
        let s = render(Some(&own), &[peer]);
        assert!(s.starts_with("127.0.0.1\tlocalhost\n"));
        assert!(s.ends_with("172.17.0.2\tabc\n172.17.0.3\tdb store\n"));
    }
}
