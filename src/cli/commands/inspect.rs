//! `amber inspect` / `amber image inspect`.

use serde_json::Value;

use crate::cli::client::{enc_path, Client, ClientError};
use crate::cli::output::Format;

/// Show low-level information on images, as JSON or through a Go template.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Names or IDs.
    #[arg(required = true)]
    pub names: Vec<String>,
    /// Format the output with a Go template, or `json`.
    #[arg(short, long)]
    pub format: Option<String>,
    /// Only objects of this type (image).
    #[arg(long = "type")]
    pub kind: Option<String>,
}

/// Run it.
pub async fn run(c: &Client, args: Args) -> anyhow::Result<i32> {
    if let Some(k) = args.kind.as_deref() {
        if k != "image" {
            anyhow::bail!("unsupported --type {k:?}: this version inspects images only");
        }
    }
    let format = Format::parse(args.format.as_deref())?;
    let mut found = Vec::new();
    let mut failed = false;
    for name in &args.names {
        match c
            .get::<Value>(&format!("/images/{}/json", enc_path(name)))
            .await
        {
            Ok(v) => found.push(v),
            Err(ClientError::Api { status, .. }) if status == hyper::StatusCode::NOT_FOUND => {
                eprintln!("Error: No such object: {name}");
                failed = true;
            }
            Err(e) => return Err(e.into()),
        }
    }
    match format {
        Format::Template(t) => {
            for v in &found {
                println!("{}", Format::render(&t, v)?);
            }
        }
        Format::Default | Format::Json => println!("{}", serde_json::to_string_pretty(&found)?),
    }
    Ok(if failed { 1 } else { 0 })
}
