//! Process state from `/proc`: every process of a container, and the
//! sockets of its network namespace (read through one of its processes, so
//! `/proc/PID/net/*` shows the container's view).
//!
//! Processes may exit while they are read; what is gone is skipped.

use std::collections::HashMap;
use std::fs;
use std::net::{Ipv4Addr, Ipv6Addr};

use serde_json::{json, Value};

/// TCP states as numbered in `include/net/tcp_states.h`.
const TCP_STATES: [&str; 13] = [
    "UNKNOWN",
    "ESTABLISHED",
    "SYN_SENT",
    "SYN_RECV",
    "FIN_WAIT1",
    "FIN_WAIT2",
    "TIME_WAIT",
    "CLOSE",
    "CLOSE_WAIT",
    "LAST_ACK",
    "LISTEN",
    "CLOSING",
    "NEW_SYN_RECV",
];
/// At most this many file-backed mappings are named per process.
const MAX_MAPPED_FILES: usize = 64;

/// The sockets of the network namespace `pid` is in, by inode.
pub fn sockets(pid: i32) -> Vec<Value> {
    let mut out = Vec::new();
    for proto in ["tcp", "tcp6", "udp", "udp6"] {
        let text = fs::read_to_string(format!("/proc/{pid}/net/{proto}")).unwrap_or_default();
        out.extend(parse_inet(proto, &text));
    }
    let text = fs::read_to_string(format!("/proc/{pid}/net/unix")).unwrap_or_default();
    out.extend(parse_unix(&text));
    out
}

/// Parse `/proc/net/{tcp,tcp6,udp,udp6}`.
pub fn parse_inet(proto: &str, text: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 10 {
            continue;
        }
        let (Some(local), Some(remote)) = (parse_addr(f[1]), parse_addr(f[2])) else {
            continue;
        };
        let st = usize::from_str_radix(f[3], 16).unwrap_or(0);
        let state = if proto.starts_with("tcp") {
            TCP_STATES.get(st).copied().unwrap_or("UNKNOWN")
        } else if st == 7 {
            "UNCONN"
        } else {
            "ESTABLISHED"
        };
        out.push(json!({
            "proto": proto, "local": local, "remote": remote, "state": state,
            "uid": f[7].parse::<u32>().unwrap_or(0),
            "inode": f[9].parse::<u64>().unwrap_or(0),
        }));
    }
    out
}

/// `0100007F:04D2` → `127.0.0.1:1234`; IPv6 as four little-endian words.
pub fn parse_addr(s: &str) -> Option<String> {
    let (ip, port) = s.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    match ip.len() {
        8 => {
            let v = u32::from_str_radix(ip, 16).ok()?;
            Some(format!("{}:{port}", Ipv4Addr::from(v.swap_bytes())))
        }
        32 => {
            let mut bytes = [0u8; 16];
            for w in 0..4 {
                let v = u32::from_str_radix(&ip[w * 8..w * 8 + 8], 16).ok()?;
                bytes[w * 4..w * 4 + 4].copy_from_slice(&v.to_le_bytes());
            }
            Some(format!("[{}]:{port}", Ipv6Addr::from(bytes)))
        }
        _ => None,
    }
}

/// Parse `/proc/net/unix`.
pub fn parse_unix(text: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 7 {
            continue;
        }
        let kind = match f[4] {
            "0001" => "stream",
            "0002" => "dgram",
            "0005" => "seqpacket",
            _ => "unknown",
        };
        let state = match f[5] {
            "01" if f[3] == "00010000" => "LISTEN",
            "01" => "UNCONNECTED",
            "03" => "CONNECTED",
            _ => "UNKNOWN",
        };
        out.push(json!({
            "proto": "unix", "type": kind, "state": state,
            "inode": f[6].parse::<u64>().unwrap_or(0),
            "path": f.get(7).copied().unwrap_or(""),
        }));
    }
    out
}

/// One process, or `None` when it is gone.
pub fn process(pid: i32, sockets: &HashMap<u64, String>) -> Option<Value> {
    let base = format!("/proc/{pid}");
    let stat = fs::read_to_string(format!("{base}/stat")).ok()?;
    let status = fs::read_to_string(format!("{base}/status")).unwrap_or_default();
    // Fields after the command (which may hold spaces and parentheses).
    let after: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, r)| r.split_whitespace().collect())
        .unwrap_or_default();
    let field = |i: usize| after.get(i).copied().unwrap_or("");
    let status_field = |k: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(k).map(|v| v.trim().to_string()))
            .unwrap_or_default()
    };
    let ids = |k: &str| -> Vec<u32> {
        status_field(k)
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect()
    };
    let ns_pid = ids("NSpid:").last().copied();
    let link = |name: &str| {
        fs::read_link(format!("{base}/{name}"))
            .map(|p| p.to_string_lossy().into_owned())
            .ok()
    };
    Some(json!({
        "pid": pid,
        "ns_pid": ns_pid,
        "ppid": field(1).parse::<i32>().unwrap_or(0),
        "state": field(0),
        "cmdline": nul_list(&fs::read(format!("{base}/cmdline")).unwrap_or_default()),
        "environ": nul_list(&fs::read(format!("{base}/environ")).unwrap_or_default()),
        "cwd": link("cwd"),
        "exe": link("exe"),
        "uid": ids("Uid:"),
        "gid": ids("Gid:"),
        "threads": field(17).parse::<u64>().unwrap_or(0),
        "start_ticks": field(19).parse::<u64>().unwrap_or(0),
        "vm_rss_kb": status_field("VmRSS:").trim_end_matches(" kB").trim().parse::<u64>().ok(),
        "limits": parse_limits(&fs::read_to_string(format!("{base}/limits")).unwrap_or_default()),
        "fds": fds(&base, sockets),
        "maps": maps_summary(&fs::read_to_string(format!("{base}/maps")).unwrap_or_default()),
    }))
}

fn nul_list(data: &[u8]) -> Vec<String> {
    data.split(|b| *b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}

fn fds(base: &str, sockets: &HashMap<u64, String>) -> Vec<Value> {
    let Ok(rd) = fs::read_dir(format!("{base}/fd")) else {
        return Vec::new();
    };
    let mut out: Vec<(u64, Value)> = Vec::new();
    for e in rd.flatten() {
        let Ok(fd) = e.file_name().to_string_lossy().parse::<u64>() else {
            continue;
        };
        let target = fs::read_link(e.path())
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let socket = target
            .strip_prefix("socket:[")
            .and_then(|s| s.strip_suffix(']'))
            .and_then(|s| s.parse::<u64>().ok())
            .and_then(|ino| sockets.get(&ino).cloned());
        out.push((fd, json!({"fd": fd, "target": target, "socket": socket})));
    }
    out.sort_by_key(|(fd, _)| *fd);
    out.into_iter().map(|(_, v)| v).collect()
}

/// `/proc/PID/limits`: fixed-width columns (name, soft, hard, units).
pub fn parse_limits(text: &str) -> Vec<Value> {
    let col =
        |l: &str, a: usize, b: usize| l.get(a..b.min(l.len())).unwrap_or("").trim().to_string();
    text.lines()
        .skip(1)
        .filter(|l| l.len() > 26)
        .map(|l| json!({"name": col(l, 0, 26), "soft": col(l, 26, 47), "hard": col(l, 47, 68), "units": col(l, 68, l.len())}))
        .collect()
}

/// Counts and sizes of the mappings and the files mapped.
pub fn maps_summary(text: &str) -> Value {
    let mut count = 0u64;
    let mut total = 0u64;
    let mut files: Vec<String> = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let Some((a, b)) = f.first().and_then(|r| r.split_once('-')) else {
            continue;
        };
        let (Ok(a), Ok(b)) = (u64::from_str_radix(a, 16), u64::from_str_radix(b, 16)) else {
            continue;
        };
        count += 1;
        total += b.saturating_sub(a);
        if let Some(p) = f.get(5).filter(|p| p.starts_with('/')) {
            if files.len() < MAX_MAPPED_FILES && !files.iter().any(|x| x == p) {
                files.push(p.to_string());
            }
        }
    }
    json!({"mappings": count, "total_bytes": total, "files": files})
}

/// A one-line description of each socket, by inode (for the fd list).
pub fn socket_names(sockets: &[Value]) -> HashMap<u64, String> {
    sockets
        .iter()
        .filter_map(|s| {
            let ino = s["inode"].as_u64().filter(|i| *i != 0)?;
            let desc = match s["proto"].as_str()? {
                "unix" => format!(
                    "unix {} {} {}",
                    s["type"].as_str()?,
                    s["state"].as_str()?,
                    s["path"].as_str()?
                ),
                p => format!(
                    "{p} {} -> {} {}",
                    s["local"].as_str()?,
                    s["remote"].as_str()?,
                    s["state"].as_str()?
                ),
            };
            Some((ino, desc.trim().to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_decode() {
        for (hex, want) in [
            ("0100007F:04D2", "127.0.0.1:1234"),
            ("00000000:0050", "0.0.0.0:80"),
            ("00000000000000000000000001000000:0016", "[::1]:22"),
            (
                "0000000000000000FFFF00000100007F:1F90",
                "[::ffff:127.0.0.1]:8080",
            ),
        ] {
            assert_eq!(parse_addr(hex).as_deref(), Some(want), "{hex}");
        }
        assert_eq!(parse_addr("zz"), None);
    }

    #[test]
    fn tcp_table_parses() {
        let text = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 00000000:04D2 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12345 1 0000000000000000 100 0 0 10 0\n";
        let v = parse_inet("tcp", text);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0]["local"], "0.0.0.0:1234");
        assert_eq!(v[0]["state"], "LISTEN");
        assert_eq!(v[0]["inode"], 12345);
    }

    #[test]
    fn limits_and_maps_parse() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \nMax open files            1024                 4096                 files     \n";
        let v = parse_limits(limits);
        assert_eq!(v[0]["name"], "Max open files");
        assert_eq!(v[0]["soft"], "1024");
        assert_eq!(v[0]["hard"], "4096");
        let maps = "00400000-00452000 r-xp 00000000 08:02 173521 /bin/busybox\n7ffd0000-7ffd1000 rw-p 00000000 00:00 0 [stack]\n";
        let m = maps_summary(maps);
        assert_eq!(m["mappings"], 2);
        assert_eq!(m["files"][0], "/bin/busybox");
    }
}
