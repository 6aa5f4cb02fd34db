//! `amber search`.

use hyper::Method;

use crate::cli::client::{empty, enc, read_all, Client};
use crate::cli::credentials;

/// Search a registry's catalog (`HOST/TERM`) for repositories.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// `HOST:PORT/TERM` (Docker Hub when no host is given).
    pub term: String,
    /// At most this many results.
    #[arg(long, default_value_t = 25)]
    pub limit: usize,
    /// Go template or `json`... only `{{.Name}}` and json are supported.
    #[arg(long)]
    pub format: Option<String>,
}

/// Run it.
pub async fn run(c: &Client, args: Args) -> anyhow::Result<i32> {
    let host = args.term.split_once('/').map(|(h, _)| h).unwrap_or("");
    let auth = credentials::lookup(host).unwrap_or_default().to_header();
    let resp = c
        .send_with(
            Method::GET,
            &format!(
                "/images/search?term={}&limit={}",
                enc(&args.term),
                args.limit
            ),
            &[("x-registry-auth", auth)],
            empty(),
        )
        .await?;
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&read_all(resp).await?)?;
    match args.format.as_deref() {
        Some("json") => {
            for r in &rows {
                println!("{r}");
            }
        }
        Some(_) => {
            for r in &rows {
                println!("{}", r["name"].as_str().unwrap_or(""));
            }
        }
        None => {
            println!(
                "{:<50} {:<30} {:<6} OFFICIAL",
                "NAME", "DESCRIPTION", "STARS"
            );
            for r in &rows {
                println!(
                    "{:<50} {:<30} {:<6} {}",
                    r["name"].as_str().unwrap_or(""),
                    r["description"].as_str().unwrap_or(""),
                    r["star_count"].as_u64().unwrap_or(0),
                    if r["is_official"].as_bool().unwrap_or(false) {
                        "[OK]"
                    } else {
                        ""
                    }
                );
            }
        }
    }
    Ok(0)
}
