//! `amber version`.

use crate::cli::client::Client;
use crate::cli::output::Format;
use crate::types::api::{VersionResponse, API_VERSION};

/// Show the client and server versions.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Output format: json or a Go template.
    #[arg(short, long)]
    pub format: Option<String>,
}

/// Run it.
pub async fn run(c: &Client, args: Args) -> anyhow::Result<i32> {
    let client = serde_json::json!({
        "Version": crate::VERSION,
        "ApiVersion": API_VERSION,
        "Os": "linux",
        "Arch": crate::engine::docker_arch(),
    });
    let server: Result<VersionResponse, _> = c.get("/version").await;
    match Format::parse(args.format.as_deref())? {
        Format::Json => {
            let s = server.as_ref().ok();
            println!("{}", serde_json::json!({ "Client": client, "Server": s }));
        }
        Format::Template(t) => {
            let s = server.as_ref().ok();
            println!(
                "{}",
                Format::render(&t, &serde_json::json!({ "Client": client, "Server": s }))?
            );
        }
        Format::Default => {
            println!(
                "Client:\n Version:\t{}\n API version:\t{API_VERSION}\n OS/Arch:\tlinux/{}",
                crate::VERSION,
                crate::engine::docker_arch()
            );
            if let Ok(s) = &server {
                println!("\nServer: amber\n Engine:\n  Version:\t{}\n  API version:\t{} (minimum version {})\n  OS/Arch:\t{}/{}\n  Kernel:\t{}", s.version, s.api_version, s.min_api_version, s.os, s.arch, s.kernel_version);
            }
        }
    }
    server?;
    Ok(0)
}
