//! `amber system check`.

use hyper::Method;

use crate::cli::client::Client;
use crate::types::api::CheckReport;

/// Verify the store: every blob's digest, every row against its file and
/// every file against its row. Exits non-zero on any problem.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Run it.
pub async fn check(c: &Client, args: CheckArgs) -> anyhow::Result<i32> {
    let report: CheckReport = c.json(Method::POST, "/system/check").await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for p in &report.problems {
            println!("problem: {p}");
        }
        println!(
            "checked {} blobs, {} layers, {} images: {}",
            report.blobs_checked,
            report.layers_checked,
            report.images_checked,
            if report.problems.is_empty() {
                "ok".to_string()
            } else {
                format!("{} problems", report.problems.len())
            }
        );
    }
    Ok(if report.problems.is_empty() { 0 } else { 1 })
}
