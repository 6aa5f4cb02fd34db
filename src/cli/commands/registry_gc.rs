//! `amber registry gc`.

use std::path::PathBuf;

use crate::cli::output::human_size;
use crate::registry::server::{gc, Storage, DEFAULT_DATA_DIR};

/// Delete blobs no manifest references. Run it with the registry stopped or
/// serving --read-only: a blob pushed but not yet referenced by a manifest
/// would be deleted.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Data directory of the registry.
    #[arg(long, default_value = DEFAULT_DATA_DIR)]
    pub data: PathBuf,
    /// Only report what would be removed.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Collect and print the report.
pub async fn run(args: Args) -> anyhow::Result<i32> {
    let dry_run = args.dry_run;
    let report = tokio::task::spawn_blocking(move || -> anyhow::Result<gc::GcReport> {
        let storage = Storage::open(&args.data)?;
        Ok(gc::collect(&storage, dry_run)?)
    })
    .await??;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(0);
    }
    let verb = if dry_run { "would remove" } else { "removed" };
    for (digest, size) in &report.removed {
        println!("{verb} {digest} ({})", human_size(*size as i64));
    }
    println!(
        "{} {} blobs, {} ({} bytes) {}; {} blobs kept",
        if dry_run { "Would remove" } else { "Removed" },
        report.removed.len(),
        human_size(report.bytes_freed as i64),
        report.bytes_freed,
        if dry_run { "would be freed" } else { "freed" },
        report.kept
    );
    Ok(0)
}
