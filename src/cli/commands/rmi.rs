//! `amber rmi` / `amber image rm`.

use hyper::Method;

use crate::cli::client::{enc_path, Client};
use crate::types::api::DeleteItem;

/// Remove one or more images.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Names or IDs.
    #[arg(required = true)]
    pub names: Vec<String>,
    /// Force removal of an image referenced by several repositories.
    #[arg(short, long)]
    pub force: bool,
}

/// Run it: every name is tried; the exit code is non-zero if any failed.
pub async fn run(c: &Client, args: Args) -> anyhow::Result<i32> {
    let mut code = 0;
    for name in &args.names {
        let path = format!("/images/{}?force={}", enc_path(name), args.force);
        match c.json::<Vec<DeleteItem>>(Method::DELETE, &path).await {
            Ok(items) => {
                for i in items {
                    if let Some(u) = i.untagged {
                        println!("Untagged: {u}");
                    }
                    if let Some(d) = i.deleted {
                        println!("Deleted: {d}");
                    }
                }
            }
            Err(e) => {
                eprintln!("{e}");
                code = 1;
            }
        }
    }
    Ok(code)
}
