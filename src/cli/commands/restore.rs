//! `amber restore`.

use serde_json::{json, Value};

use crate::cli::client::{enc_path, read_all, Client};

/// Recreate the containers of a bundle with their configuration, writable
/// layer and log history, and start those that were running. A name in use
/// is an error unless `--name-suffix` or `--replace` is given.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Bundle ID.
    pub bundle: String,
    /// Only these containers of the bundle.
    pub containers: Vec<String>,
    /// Append this to every restored container's name.
    #[arg(
        long,
        default_value = "",
        conflicts_with = "replace",
        allow_hyphen_values = true
    )]
    pub name_suffix: String,
    /// Remove existing containers of the same names first.
    #[arg(long)]
    pub replace: bool,
    /// `json` prints what was restored.
    #[arg(long)]
    pub format: Option<String>,
}

/// Run it: prints the restored containers' names.
pub async fn run(c: &Client, args: Args) -> anyhow::Result<i32> {
    let body = json!({
        "containers": args.containers, "name_suffix": args.name_suffix, "replace": args.replace,
    });
    let path = format!("/amber/v1/bundles/{}/restore", enc_path(&args.bundle));
    let resp = c.post_json(&path, &body).await?;
    let v: Value = serde_json::from_slice(&read_all(resp).await?)?;
    if args.format.as_deref() == Some("json") {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(0);
    }
    for ct in v["Containers"].as_array().into_iter().flatten() {
        let name = ct["Name"].as_str().unwrap_or_default();
        println!("{name}");
        for m in ct["Volumes"].as_array().into_iter().flatten() {
            if m["Restored"] == false {
                eprintln!(
                    "note: {name}:{} not restored: {}",
                    m["Destination"].as_str().unwrap_or_default(),
                    m["Reason"].as_str().unwrap_or_default()
                );
            }
        }
    }
    Ok(0)
}
