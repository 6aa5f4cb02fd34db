//! Container networking: bridges, veth pairs and network namespaces
//! (`link`), the daemon's nftables table (`firewall`), address arithmetic
//! and subnet choice (`ipnet`, `ipam`), the userland port proxy (`proxy`)
//! and the per-container `/etc/hosts` (`hosts`).
//!
//! Knows nothing of containers, images or the store: the engine decides who
//! gets which address (leases live in the store) and calls these
//! mechanisms. Synchronous; talks to the kernel through `ip`, `nft`,
//! `nsenter`, and binds host sockets for published ports.

pub mod firewall;
pub mod hosts;
pub mod ipam;
pub mod ipnet;
pub mod link;
pub mod proxy;
pub mod proxy_process;

use std::path::{Path, PathBuf};

pub use ipnet::Ipv4Net;

/// The default bridge's link name (Docker's is `docker0`).
pub const DEFAULT_BRIDGE: &str = "amber0";

/// Errors of network operations.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// A command (`ip`, `nft`, `nsenter`) failed.
    #[error("failed to run `{cmd}`: {message}")]
    Command {
        /// The command line.
        cmd: String,
        /// Its stderr, or why it could not run.
        message: String,
    },
    /// A filesystem operation failed.
    #[error("failed to {op} {}: {source}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// On which path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A host port could not be bound (Docker's message).
    #[error("Bind for {addr} failed: port is already allocated")]
    PortInUse {
        /// The host address.
        addr: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// No free subnet or address.
    #[error("{0}")]
    Exhausted(String),
    /// Bad configuration.
    #[error("{0}")]
    Invalid(String),
}

impl NetError {
    /// An I/O error with its path.
    pub fn io(op: &'static str, path: &Path, source: std::io::Error) -> NetError {
        NetError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// How the daemon's default network is set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetOptions {
    /// Link name of the default bridge (`--bridge`, `"bridge"` in daemon.json).
    pub bridge: String,
    /// The bridge's address and prefix (`--bip`), e.g. `172.30.0.1/16`;
    /// default: a private subnet that no host route uses.
    pub bip: Option<Ipv4Net>,
}

impl Default for NetOptions {
    fn default() -> NetOptions {
        NetOptions {
            bridge: DEFAULT_BRIDGE.into(),
            bip: None,
        }
    }
}

/// Enable IPv4 forwarding (bridged containers reach beyond their bridge
/// through the host), as Docker does.
pub fn enable_forwarding() -> Result<(), NetError> {
    let p = Path::new("/proc/sys/net/ipv4/ip_forward");
    if std::fs::read_to_string(p).is_ok_and(|v| v.trim() == "1") {
        return Ok(());
    }
    std::fs::write(p, "1").map_err(|e| NetError::io("write", p, e))
}
