//! `amber diff` / `amber container diff`.

use serde_json::Value;

use crate::cli::client::{enc_path, Client};

/// Inspect changes to files or directories on a container's filesystem.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The container.
    pub container: String,
}

/// Run it: `C`hanged, `A`dded, `D`eleted, one path a line.
pub async fn run(c: &Client, args: Args) -> anyhow::Result<i32> {
    let v: Value = c
        .get(&format!(
            "/containers/{}/changes",
            enc_path(&args.container)
        ))
        .await?;
    for ch in v.as_array().into_iter().flatten() {
        let kind = match ch["Kind"].as_i64() {
            Some(0) => "C",
            Some(1) => "A",
            Some(2) => "D",
            _ => "?",
        };
        println!("{kind} {}", ch["Path"].as_str().unwrap_or_default());
    }
    Ok(0)
}
