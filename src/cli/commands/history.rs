//! `amber history` / `amber image history`.

use serde_json::Value;

use crate::cli::client::{enc_path, Client};
use crate::cli::output::{human_since, human_size, print_table, Format};

/// Show the history of an image.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The image.
    pub image: String,
    /// Don't truncate output.
    #[arg(long)]
    pub no_trunc: bool,
    /// Only show image IDs.
    #[arg(short, long)]
    pub quiet: bool,
    /// Output format: table, json or a Go template.
    #[arg(long)]
    pub format: Option<String>,
}

/// Run it.
pub async fn run(c: &Client, args: Args) -> anyhow::Result<i32> {
    let rows: Vec<Value> = c
        .get(&format!("/images/{}/history", enc_path(&args.image)))
        .await?;
    let id = |v: &Value| {
        let id = v["Id"].as_str().unwrap_or_default();
        if args.no_trunc || id == "<missing>" {
            id.to_string()
        } else {
            id.trim_start_matches("sha256:").chars().take(12).collect()
        }
    };
    if args.quiet {
        rows.iter().for_each(|r| println!("{}", id(r)));
        return Ok(0);
    }
    match Format::parse(args.format.as_deref())? {
        Format::Json => rows.iter().for_each(|r| println!("{r}")),
        Format::Template(t) => {
            for r in &rows {
                println!("{}", Format::render(&t, r)?);
            }
        }
        Format::Default => {
            let table: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    let by = r["CreatedBy"].as_str().unwrap_or_default();
                    let by = if args.no_trunc || by.chars().count() <= 45 {
                        by.to_string()
                    } else {
                        format!("{}…", by.chars().take(44).collect::<String>())
                    };
                    vec![
                        id(r),
                        human_since(r["Created"].as_i64().unwrap_or(0)),
                        by,
                        human_size(r["Size"].as_i64().unwrap_or(0)),
                        r["Comment"].as_str().unwrap_or_default().to_string(),
                    ]
                })
                .collect();
            print_table(
                &["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"],
                &table,
            );
        }
    }
    Ok(0)
}
