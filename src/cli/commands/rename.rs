//! `amber rename` / `amber container rename`.

use crate::cli::client::{enc, enc_path, Client};

/// Rename a container.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The container.
    pub container: String,
    /// Its new name.
    pub new_name: String,
}

/// Run it.
pub async fn run(c: &Client, args: Args) -> anyhow::Result<i32> {
    let new = args.new_name.trim();
    if new.is_empty() {
        anyhow::bail!("Error: Neither old nor new names may be empty");
    }
    c.post(&format!(
        "/containers/{}/rename?name={}",
        enc_path(&args.container),
        enc(new)
    ))
    .await?;
    Ok(0)
}
