//! The daemon's nftables table: masquerading of each bridge network's
//! outbound traffic, forwarding to and from the bridges, and isolation
//! between them. One table per daemon (named after its default bridge, so
//! parallel daemons never touch each other's rules), replaced as a whole in
//! one atomic `nft -f` transaction, deleted as a whole.

use std::process::{Command, Stdio};

use super::ipnet::Ipv4Net;
use super::NetError;

/// One bridge network as the firewall sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeRule {
    /// Bridge link name.
    pub bridge: String,
    /// The network's subnet.
    pub subnet: Ipv4Net,
    /// No masquerading (no outbound access).
    pub internal: bool,
}

/// The nftables table name for a daemon whose default bridge is `bridge`
/// (nft identifiers allow letters, digits and `_`).
pub fn table_name(bridge: &str) -> String {
    let clean: String = bridge
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("amber_{clean}")
}

/// The nft script that (re)creates `table` with rules for `bridges`.
pub fn script(table: &str, bridges: &[BridgeRule]) -> String {
    let mut s = format!("table ip {table}\ndelete table ip {table}\ntable ip {table} {{\n");
    s.push_str(
        "  chain postrouting {\n    type nat hook postrouting priority srcnat; policy accept;\n",
    );
    for b in bridges.iter().filter(|b| !b.internal) {
        s.push_str(&format!(
            "    ip saddr {} oifname != \"{}\" masquerade\n",
            b.subnet.trunc(),
            b.bridge
        ));
    }
    s.push_str(
        "  }\n  chain forward {\n    type filter hook forward priority filter; policy accept;\n",
    );
    for a in bridges {
        for b in bridges.iter().filter(|b| b.bridge != a.bridge) {
            s.push_str(&format!(
                "    iifname \"{}\" oifname \"{}\" drop\n",
                a.bridge, b.bridge
            ));
        }
    }
    for b in bridges {
        if b.internal {
            s.push_str(&format!(
                "    iifname \"{0}\" oifname != \"{0}\" drop\n",
                b.bridge
            ));
        }
        s.push_str(&format!("    iifname \"{}\" accept\n", b.bridge));
        s.push_str(&format!(
            "    oifname \"{}\" ct state established,related accept\n",
            b.bridge
        ));
    }
    s.push_str("  }\n}\n");
    s
}

fn nft(input: &str) -> Result<(), NetError> {
    tracing::debug!(script = input, "nft");
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| NetError::Command {
            cmd: "nft -f -".into(),
            message: e.to_string(),
        })?;
    if let Some(mut pipe) = child.stdin.take() {
        use std::io::Write;
        pipe.write_all(input.as_bytes())
            .map_err(|e| NetError::Command {
                cmd: "nft -f -".into(),
                message: e.to_string(),
            })?;
    }
    let out = child.wait_with_output().map_err(|e| NetError::Command {
        cmd: "nft -f -".into(),
        message: e.to_string(),
    })?;
    if !out.status.success() {
        return Err(NetError::Command {
            cmd: "nft -f -".into(),
            message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(())
}

/// Replace the daemon's table with rules for `bridges`.
pub fn apply(table: &str, bridges: &[BridgeRule]) -> Result<(), NetError> {
    nft(&script(table, bridges))
}

/// Delete the daemon's table (a missing one is fine).
pub fn remove(table: &str) -> Result<(), NetError> {
    nft(&format!("table ip {table}\ndelete table ip {table}\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_shape() {
        let b = |n: &str, s: &str, internal| BridgeRule {
            bridge: n.into(),
            subnet: s.parse().unwrap(),
            internal,
        };
        let s = script(
            "amber_amber0",
            &[
                b("amber0", "172.17.0.1/16", false),
                b("br-1", "10.5.0.1/24", true),
            ],
        );
        assert!(s.starts_with("table ip amber_amber0\ndelete table ip amber_amber0\n"));
        assert!(s.contains("ip saddr 172.17.0.0/16 oifname != \"amber0\" masquerade"));
        assert!(!s.contains("10.5.0.0/24 oifname"));
        assert!(s.contains("iifname \"amber0\" oifname \"br-1\" drop"));
        assert!(s.contains("iifname \"br-1\" oifname != \"br-1\" drop"));
        assert_eq!(table_name("amt-1.x"), "amber_amt_1_x");
    }
}
