//! `amber images`.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::cli::client::{enc, Client};
use crate::cli::output::{human_since, human_size, print_table, Format};
use crate::types::api::ImageSummary;

/// List images.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only images matching REPOSITORY[:TAG].
    pub reference: Option<String>,
    /// Show all images (including intermediate ones).
    #[arg(short, long)]
    pub all: bool,
    /// Only show image IDs.
    #[arg(short, long)]
    pub quiet: bool,
    /// Show digests.
    #[arg(long)]
    pub digests: bool,
    /// Don't truncate output.
    #[arg(long)]
    pub no_trunc: bool,
    /// Filter: reference=, dangling=true|false, label=.
    #[arg(short, long)]
    pub filter: Vec<String>,
    /// Output format: table, json or a Go template.
    #[arg(long)]
    pub format: Option<String>,
}

/// One row, with the field names of Docker's `images --format`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct Row {
    #[serde(rename = "ID")]
    pub(super) id: String,
    pub(super) repository: String,
    pub(super) tag: String,
    digest: String,
    pub(super) created_since: String,
    created_at: String,
    pub(super) size: String,
    containers: String,
}

/// Run it.
pub async fn run(c: &Client, args: Args) -> anyhow::Result<i32> {
    let mut filters: BTreeMap<String, BTreeMap<String, bool>> = BTreeMap::new();
    for f in &args.filter {
        let (k, v) = f
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("bad format of filter {f:?} (expected name=value)"))?;
        filters
            .entry(k.to_string())
            .or_default()
            .insert(v.to_string(), true);
    }
    if let Some(r) = &args.reference {
        filters
            .entry("reference".into())
            .or_default()
            .insert(r.clone(), true);
    }
    let path = format!(
        "/images/json?all={}&filters={}",
        args.all,
        enc(&serde_json::to_string(&filters)?)
    );
    let images: Vec<ImageSummary> = c.get(&path).await?;
    if args.quiet {
        let mut seen = std::collections::HashSet::new();
        for i in &images {
            let id = short_id(&i.id, args.no_trunc);
            if seen.insert(id.clone()) {
                println!("{id}");
            }
        }
        return Ok(0);
    }
    let rows: Vec<Row> = images
        .iter()
        .flat_map(|i| rows_of(i, args.no_trunc))
        .collect();
    match Format::parse(args.format.as_deref())? {
        Format::Json => {
            for r in &rows {
                println!("{}", serde_json::to_string(r)?);
            }
        }
        Format::Template(t) => {
            for r in &rows {
                println!("{}", Format::render(&t, r)?);
            }
        }
        Format::Default => {
            let mut header = vec!["REPOSITORY", "TAG"];
            if args.digests {
                header.push("DIGEST");
            }
            header.extend(["IMAGE ID", "CREATED", "SIZE"]);
            let table: Vec<Vec<String>> = rows
                .into_iter()
                .map(|r| {
                    let mut v = vec![r.repository, r.tag];
                    if args.digests {
                        v.push(r.digest);
                    }
                    v.extend([r.id, r.created_since, r.size]);
                    v
                })
                .collect();
            print_table(&header, &table);
        }
    }
    Ok(0)
}

fn short_id(id: &str, no_trunc: bool) -> String {
    if no_trunc {
        id.to_string()
    } else {
        id.trim_start_matches("sha256:").chars().take(12).collect()
    }
}

/// One row per tag of an image (`<none>` when untagged).
pub(super) fn rows_of(i: &ImageSummary, no_trunc: bool) -> Vec<Row> {
    let tags: Vec<(String, String)> = if i.repo_tags.is_empty() {
        vec![("<none>".into(), "<none>".into())]
    } else {
        i.repo_tags
            .iter()
            .map(|t| {
                let repo = crate::store::repo_name(t);
                let tag = t[repo.len()..].trim_start_matches(':');
                (repo.to_string(), tag.to_string())
            })
            .collect()
    };
    tags.into_iter()
        .map(|(repository, tag)| Row {
            id: short_id(&i.id, no_trunc),
            repository,
            tag,
            digest: i
                .repo_digests
                .first()
                .and_then(|d| d.split_once('@'))
                .map(|(_, d)| d.to_string())
                .unwrap_or_else(|| "<none>".into()),
            created_since: human_since(i.created),
            created_at: chrono::DateTime::from_timestamp(i.created, 0)
                .map(|t| t.to_rfc3339())
                .unwrap_or_default(),
            size: human_size(i.size),
            containers: if i.containers < 0 {
                "N/A".into()
            } else {
                i.containers.to_string()
            },
        })
        .collect()
}
