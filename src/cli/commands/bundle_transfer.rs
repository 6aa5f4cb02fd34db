//! `amber bundle push HOST ID` and `amber bundle pull HOST ID`: the daemon
//! moves a bundle to or from another daemon, only the blobs the receiver
//! lacks (docs/transfer.md).

use hyper::Method;
use serde_json::Value;

use crate::cli::client::{empty, enc, enc_path, read_all, Client};
use crate::cli::output::human_size;

/// Push or pull a bundle.
#[derive(Debug, clap::Args)]
pub struct TransferArgs {
    /// The other daemon (`unix:///path`, or a cluster host).
    #[arg(value_name = "HOST")]
    pub peer: String,
    /// Bundle ID (or unique prefix, on the side that has it).
    pub bundle: String,
    /// `json` prints the transfer report.
    #[arg(long)]
    pub format: Option<String>,
}

/// Run `bundle push` (`push`) or `bundle pull`.
pub async fn run(c: &Client, a: TransferArgs, push: bool) -> anyhow::Result<i32> {
    let path = if push {
        format!(
            "/amber/v1/bundles/{}/push?host={}",
            enc_path(&a.bundle),
            enc(&a.peer)
        )
    } else {
        format!(
            "/amber/v1/bundles/pull?host={}&id={}",
            enc(&a.peer),
            enc(&a.bundle)
        )
    };
    let resp = c.send(Method::POST, &path, None, empty()).await?;
    let v: Value = serde_json::from_slice(&read_all(resp).await?)?;
    if a.format.as_deref() == Some("json") {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(0);
    }
    let (verb, dir) = if push {
        ("pushed", "to")
    } else {
        ("pulled", "from")
    };
    println!(
        "{verb} {} {dir} {}: {}/{} blobs, {} in {} ms",
        v["bundle"].as_str().unwrap_or_default(),
        a.peer,
        v["blobs_sent"],
        v["blobs"],
        human_size(v["bytes_sent"].as_i64().unwrap_or(0)),
        v["ms"]
    );
    Ok(0)
}
