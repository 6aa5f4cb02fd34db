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
/// is the one place where a file is rewritten rather than replaced. An
/// unchanged file is not touched; otherwise the new bytes go over the old
/// ones first and the length is cut after, so a concurrent reader never
/// finds the file empty.
pub fn write_in_place(path: &Path, content: &str) -> Result<(), NetError> {
    if std::fs::read(path).is_ok_and(|old| old == content.as_bytes()) {
        return Ok(());
    }
    let mut f = std::fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| NetError::io("open", path, e))?;
    f.write_all(content.as_bytes())
        .and_then(|()| f.set_len(content.len() as u64))
        .map_err(|e| NetError::io("write", path, e))
}

/// `name:ip` or `name=ip` of `--add-host` (the IP may be `host-gateway`,
/// replaced by `gateway`).
pub fn parse_extra_host(spec: &str, gateway: &str) -> Result<HostEntry, String> {
    let bad = || format!("bad format for add-host: {spec:?}");
    let (name, ip) = spec
        .split_once('=')
        .or_else(|| spec.split_once(':'))
        .ok_or_else(bad)?;
    let ip = ip.trim_start_matches('[').trim_end_matches(']');
    if name.is_empty() || name.contains(char::is_whitespace) {
        return Err(bad());
    }
    let ip = if ip == "host-gateway" {
        gateway.to_string()
    } else if ip.parse::<std::net::IpAddr>().is_ok() {
        ip.to_string()
    } else {
        return Err(format!("invalid IP address in add-host: {ip:?}"));
    };
    Ok(HostEntry {
        ip,
        names: vec![name.to_string()],
    })
}

/// resolv.conf from `base` (the host's, already filtered) with the
/// container's `--dns`, `--dns-search` and `--dns-option` replacing its
/// nameservers, search domains and options.
pub fn resolv_conf(base: &str, dns: &[String], search: &[String], options: &[String]) -> String {
    if dns.is_empty() && search.is_empty() && options.is_empty() {
        return base.to_string();
    }
    let lines = |key: &str| -> Vec<String> {
        base.lines()
            .filter(|l| l.split_whitespace().next() == Some(key))
            .map(str::to_string)
            .collect()
    };
    let mut out = Vec::new();
    match search.is_empty() {
        true => out.extend(lines("search")),
        false => out.push(format!("search {}", search.join(" "))),
    }
    match dns.is_empty() {
        true => out.extend(lines("nameserver")),
        false => out.extend(dns.iter().map(|d| format!("nameserver {d}"))),
    }
    match options.is_empty() {
        true => out.extend(lines("options")),
        false => out.push(format!("options {}", options.join(" "))),
    }
    out.join("\n") + "\n"
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

    #[test]
    fn extra_hosts_and_dns() {
        let e = parse_extra_host("db:10.0.0.9", "172.17.0.1").unwrap();
        assert_eq!((e.ip.as_str(), e.names[0].as_str()), ("10.0.0.9", "db"));
        let e = parse_extra_host("host.docker.internal=host-gateway", "172.17.0.1").unwrap();
        assert_eq!(e.ip, "172.17.0.1");
        assert_eq!(parse_extra_host("v6:[::1]", "").unwrap().ip, "::1");
        assert!(parse_extra_host("nocolon", "").is_err());
        assert!(parse_extra_host("x:notanip", "").is_err());
        let base = "search lan\nnameserver 10.1.1.1\noptions ndots:2\n";
        assert_eq!(resolv_conf(base, &[], &[], &[]), base);
        let r = resolv_conf(base, &["9.9.9.9".into()], &[], &["ndots:5".into()]);
        assert_eq!(r, "search lan\nnameserver 9.9.9.9\noptions ndots:5\n");
    }
}
