//! `amber inspect`, `amber image inspect`, `amber container inspect`.

use serde_json::Value;

use crate::cli::client::{enc_path, Client};
use crate::cli::output::Format;

/// Return low-level information on containers or images, as JSON or
/// through a Go template.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Names or IDs.
    #[arg(required = true)]
    pub names: Vec<String>,
    /// Format the output with a Go template, or `json`.
    #[arg(short, long)]
    pub format: Option<String>,
    /// Only objects of this type: container or image.
    #[arg(long = "type")]
    pub kind: Option<String>,
    /// Display total file sizes (accepted for compatibility).
    #[arg(short, long)]
    pub size: bool,
}

/// Run it: for each name, a container first, then an image.
pub async fn run(c: &Client, args: Args) -> anyhow::Result<i32> {
    let kinds: &[&str] = match args.kind.as_deref() {
        None | Some("") => &["container", "image"],
        Some("container") => &["container"],
        Some("image") => &["image"],
        Some(k) => anyhow::bail!("\"{k}\" is not a valid value for --type"),
    };
    let format = Format::parse(args.format.as_deref())?;
    let mut found = Vec::new();
    let mut failed = false;
    for name in &args.names {
        match lookup(c, name, kinds).await? {
            Some(v) => found.push(v),
            None => {
                let what = match kinds {
                    ["container"] => "container",
                    ["image"] => "image",
                    _ => "object",
                };
                eprintln!("Error: No such {what}: {name}");
                failed = true;
            }
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

async fn lookup(c: &Client, name: &str, kinds: &[&str]) -> anyhow::Result<Option<Value>> {
    for kind in kinds {
        let path = match *kind {
            "container" => format!("/containers/{}/json", enc_path(name)),
            _ => format!("/images/{}/json", enc_path(name)),
        };
        match c.get::<Value>(&path).await {
            Ok(v) => return Ok(Some(v)),
            Err(e) if e.is_not_found() => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(None)
}
