//! `amber registry gc`.

use std::path::PathBuf;
use std::time::Duration;

use crate::cli::output::human_size;
use crate::registry::server::storage::Access;
use crate::registry::server::{gc, Storage, DEFAULT_DATA_DIR};

/// Delete blobs no manifest references. Runs only with the registry stopped
/// or serving --read-only (a blob pushed but not yet referenced by a
/// manifest would be deleted); refuses while a writable server holds DIR.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Data directory of the registry.
    #[arg(long, default_value = DEFAULT_DATA_DIR)]
    pub data: PathBuf,
    /// Only report what would be removed.
    #[arg(long)]
    pub dry_run: bool,
    /// Also remove uploads nobody wrote to for this many hours.
    #[arg(long, default_value_t = 168)]
    pub upload_max_age_hours: u64,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Collect and print the report.
pub async fn run(args: Args) -> anyhow::Result<i32> {
    let dry_run = args.dry_run;
    let opts = gc::GcOptions {
        dry_run,
        upload_max_age: Duration::from_secs(args.upload_max_age_hours.saturating_mul(3600)),
    };
    let report = tokio::task::spawn_blocking(move || -> anyhow::Result<gc::GcReport> {
        let storage = Storage::open(&args.data, Access::Shared)?;
        Ok(gc::collect(&storage, opts)?)
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
    if report.uploads_removed > 0 {
        println!(
            "{} {} abandoned uploads ({} bytes)",
            if dry_run { "Would remove" } else { "Removed" },
            report.uploads_removed,
            report.upload_bytes_freed
        );
    }
    Ok(0)
}
