//! `amber registry serve`.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::registry::server::{self, ServeOptions, DEFAULT_ADDR, DEFAULT_DATA_DIR};

/// Run an OCI distribution (registry v2) server in the foreground until
/// SIGINT/SIGTERM. Plain HTTP unless --tls-cert/--tls-key are given.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on.
    #[arg(long, default_value = DEFAULT_ADDR)]
    pub addr: SocketAddr,
    /// Data directory (blobs, repositories, uploads).
    #[arg(long, default_value = DEFAULT_DATA_DIR)]
    pub data: PathBuf,
    /// Require HTTP Basic auth against this htpasswd file (bcrypt entries, as `htpasswd -B` writes).
    #[arg(long, conflicts_with = "token_file")]
    pub htpasswd: Option<PathBuf>,
    /// Require a bearer token from this file (one token per line).
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// PEM certificate chain for HTTPS.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for HTTPS.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Serve pulls only; refuse every push and delete.
    #[arg(long)]
    pub read_only: bool,
}

/// Serve until stopped.
pub async fn run(args: Args) -> anyhow::Result<i32> {
    server::run(ServeOptions {
        addr: args.addr,
        data: args.data,
        htpasswd: args.htpasswd,
        token_file: args.token_file,
        tls: args.tls_cert.zip(args.tls_key),
        read_only: args.read_only,
    })
    .await?;
    Ok(0)
}
