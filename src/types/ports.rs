//! Published ports in Docker's shapes: the `-p` grammar and the
//! `HostConfig.PortBindings` / `Config.ExposedPorts` JSON.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One element of `HostConfig.PortBindings["80/tcp"]`.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortBinding {
    /// Host address (`""` = every address).
    #[serde(rename = "HostIp", default)]
    pub host_ip: String,
    /// Host port, a range `8000-8010`, or `""` for any free port.
    #[serde(rename = "HostPort", default)]
    pub host_port: String,
}

/// `HostConfig.PortBindings`: `"80/tcp"` → bindings (`null` allowed).
pub type PortMap = BTreeMap<String, Option<Vec<PortBinding>>>;

/// A `-p` value as `(port key, binding)` pairs, one per container port:
/// `80`, `8080:80`, `127.0.0.1:8080:80`, `127.0.0.1::80`, `[::1]:80:80`,
/// ranges `8000-8001:80-81`, and `/tcp` or `/udp`.
pub fn parse_publish(spec: &str) -> Result<Vec<(String, PortBinding)>, String> {
    let (rest, proto) = match spec.rsplit_once('/') {
        Some((r, p)) => (r, p.to_ascii_lowercase()),
        None => (spec, "tcp".to_string()),
    };
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("invalid proto: {proto}"));
    }
    let (ip, host, container) = split_parts(rest)?;
    if !ip.is_empty() && ip.parse::<std::net::IpAddr>().is_err() {
        return Err(format!("invalid IP address: {ip}"));
    }
    if container.is_empty() {
        return Err(format!("no port specified: {spec}<empty>"));
    }
    let (c_start, c_end) =
        parse_range(container).map_err(|_| format!("invalid containerPort: {container}"))?;
    let host_range = if host.is_empty() {
        None
    } else {
        Some(parse_range(host).map_err(|_| format!("invalid hostPort: {host}"))?)
    };
    let n = c_end - c_start;
    if let Some((h_start, h_end)) = host_range {
        if n != 0 && h_end - h_start != n {
            return Err(format!(
                "invalid ranges specified for container and host Ports: {container} and {host}"
            ));
        }
    }
    let mut out = Vec::new();
    for i in 0..=n {
        let host_port = match host_range {
            None => String::new(),
            // One container port and a host range: any port of the range.
            Some((s, e)) if n == 0 && s != e => format!("{s}-{e}"),
            Some((s, _)) => (s + i).to_string(),
        };
        out.push((
            format!("{}/{proto}", c_start + i),
            PortBinding {
                host_ip: ip.to_string(),
                host_port,
            },
        ));
    }
    Ok(out)
}

/// `ip:host:container`, with `[v6]` brackets removed.
fn split_parts(s: &str) -> Result<(&str, &str, &str), String> {
    if let Some(rest) = s.strip_prefix('[') {
        let (ip, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("invalid IP address: {s}"))?;
        let after = after
            .strip_prefix(':')
            .ok_or_else(|| format!("invalid port format: {s}"))?;
        let (h, c) = after
            .split_once(':')
            .ok_or_else(|| format!("invalid port format: {s}"))?;
        return Ok((ip, h, c));
    }
    let parts: Vec<&str> = s.split(':').collect();
    match parts.as_slice() {
        [c] => Ok(("", "", c)),
        [h, c] => Ok(("", h, c)),
        [ip, h, c] => Ok((ip, h, c)),
        _ => Err(format!("invalid port format: {s}")),
    }
}

/// `80` or `8000-8010` (1..=65535, start ≤ end).
pub fn parse_range(s: &str) -> Result<(u16, u16), String> {
    let port = |p: &str| -> Result<u16, String> {
        match p.parse::<u16>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(format!("invalid port: {p}")),
        }
    };
    match s.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (port(a)?, port(b)?);
            if a > b {
                return Err(format!("invalid range: {s}"));
            }
            Ok((a, b))
        }
        None => port(s).map(|p| (p, p)),
    }
}

/// `80/tcp` → `(80, "tcp")`; a bare port is TCP.
pub fn parse_port_key(key: &str) -> Result<(u16, String), String> {
    let (p, proto) = key.split_once('/').unwrap_or((key, "tcp"));
    let (port, end) = parse_range(p)?;
    if port != end {
        return Err(format!("invalid port: {key}"));
    }
    Ok((port, proto.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(spec: &str) -> (String, String, String) {
        let v = parse_publish(spec).unwrap();
        assert_eq!(v.len(), 1, "{spec}");
        let (k, b) = &v[0];
        (k.clone(), b.host_ip.clone(), b.host_port.clone())
    }

    #[test]
    fn docker_forms() {
        let s = |a: &str, b: &str, c: &str| (a.to_string(), b.to_string(), c.to_string());
        assert_eq!(one("80"), s("80/tcp", "", ""));
        assert_eq!(one("8080:80"), s("80/tcp", "", "8080"));
        assert_eq!(one("127.0.0.1:8080:80"), s("80/tcp", "127.0.0.1", "8080"));
        assert_eq!(one("127.0.0.1::80/udp"), s("80/udp", "127.0.0.1", ""));
        assert_eq!(one("[::1]:53:53/udp"), s("53/udp", "::1", "53"));
        assert_eq!(one("8000-8010:80"), s("80/tcp", "", "8000-8010"));
        let r = parse_publish("8000-8001:80-81/tcp").unwrap();
        assert_eq!(r[1].0, "81/tcp");
        assert_eq!(r[1].1.host_port, "8001");
        assert_eq!(parse_publish("7000-7002").unwrap().len(), 3);
    }

    #[test]
    fn bad_forms() {
        for (spec, msg) in [
            ("abc", "invalid containerPort: abc"),
            ("70000:80", "invalid hostPort: 70000"),
            ("8080:", "no port specified"),
            ("1.2.3:80:80", "invalid IP address: 1.2.3"),
            ("80/foo", "invalid proto: foo"),
            ("1:2:3:4", "invalid port format"),
            ("8000-8002:80-81", "invalid ranges"),
            ("0", "invalid containerPort: 0"),
        ] {
            let e = parse_publish(spec).unwrap_err();
            assert!(e.contains(msg), "{spec}: {e}");
        }
        assert_eq!(parse_port_key("53/UDP").unwrap(), (53, "udp".into()));
        assert!(parse_port_key("1-2/tcp").is_err());
    }
}
